// Corrupt or odd model folders are refused with one line naming the file and what is wrong,
// at load time: never a run that scores 0, a hang, a raw JavaScript error or a native crash.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { copyModel, defaultModel, editHeader, fixtures, gpuTests, repo } from './helpers.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
/** A writable copy of a model folder, removed after the file's tests. */
function copy(src: string): string {
  const dir = copyModel(src);
  made.push(path.dirname(dir));
  return dir;
}

const tiny = path.join(fixtures, 'tiny');
const st = (dir: string) => path.join(dir, 'model.safetensors');
const cfgPath = (dir: string) => path.join(dir, 'config.json');
const editConfig = (dir: string, edit: (c: Record<string, any>) => void) => {
  const c = JSON.parse(readFileSync(cfgPath(dir), 'utf8'));
  edit(c);
  writeFileSync(cfgPath(dir), JSON.stringify(c));
};

function header(file: string): { n: number; h: Record<string, any> } {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { n, h: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) };
}

/** Overwrites the bytes of element `index` of tensor `name` in place. */
function poke(file: string, name: string, index: number, bytes: number[]): void {
  const { n, h } = header(file);
  const size = { F32: 4, F16: 2, BF16: 2 }[h[name].dtype as 'F32'];
  const buf = readFileSync(file);
  Buffer.from(bytes).copy(buf, 8 + n + h[name].data_offsets[0] + index * size);
  writeFileSync(file, buf);
}

/** The QuestError message of opening and loading a folder on the CPU. */
async function loadError(dir: string): Promise<string> {
  try {
    const folder = openModelFolder(dir);
    await loadModel(folder.spec, folder.dir, 'cpu');
  } catch (err) {
    expect((err as Error).name).toBe('QuestError');
    return (err as Error).message;
  }
  throw new Error(`${dir} loaded`);
}

/** The CLI's one line (exit code 1) for an eval of `dir`, within a time limit: a hang fails. */
async function evalError(dir: string): Promise<string> {
  const args = ['eval', '--model', dir, '--device', 'cpu', '--limit', '1', '--lengths', '256', '--output-path', path.join(path.dirname(dir), 'out')];
  const r = await execa(process.execPath, [path.join(repo, 'bin', 'quest.js'), ...args], { reject: false, timeout: 30_000 });
  expect(r.timedOut).toBe(false);
  expect(r.signal ?? null).toBeNull();
  expect(r.exitCode).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^quest: /);
  return lines[0].slice('quest: '.length);
}

describe('safetensors headers', () => {
  it('overlapping data_offsets', async () => {
    const dir = copy(tiny);
    const { h } = header(st(dir));
    const q = h['model.layers.0.self_attn.q_proj.weight'].data_offsets;
    const k = 'model.layers.0.self_attn.k_proj.weight';
    const kBytes = h[k].data_offsets[1] - h[k].data_offsets[0];
    editHeader(st(dir), (x) => (x[k].data_offsets = [q[0], q[0] + kBytes]));
    // Sorted by start, then end: k (the shorter) comes first.
    expect(await loadError(dir)).toBe(
      `${st(dir)}: tensors ${k} and model.layers.0.self_attn.q_proj.weight overlap (data offsets ${q[0]}-${q[0] + kBytes} and ${q[0]}-${q[1]})`,
    );
  });

  it('data_offsets misaligned for the dtype', async () => {
    const dir = copy(tiny);
    const name = 'model.layers.0.input_layernorm.weight';
    const [b, e] = header(st(dir)).h[name].data_offsets;
    editHeader(st(dir), (x) => (x[name].data_offsets = [b + 2, e + 2]));
    expect(await loadError(dir)).toBe(`${st(dir)}: tensor ${name} starts at data offset ${b + 2}, not a multiple of its F32 element size (4 bytes)`);
  });

  it('data_offsets beyond the file', async () => {
    const dir = copy(tiny);
    const { n } = header(st(dir));
    const data = statSync(st(dir)).size - 8 - n;
    editHeader(st(dir), (x) => (x['model.norm.weight'].data_offsets = [data, data + 128]));
    expect(await loadError(dir)).toBe(`${st(dir)}: tensor model.norm.weight ends at data offset ${data + 128}, past the end of the file (${data} bytes of data)`);
  });

  it('a null entry', async () => {
    const dir = copy(tiny);
    editHeader(st(dir), (x) => (x['model.norm.weight'] = null));
    expect(await loadError(dir)).toBe(`${st(dir)}: tensor model.norm.weight is null, not an object with dtype, shape and data_offsets`);
  });

  it('an entry that is not a weight is checked too', async () => {
    const dir = copy(tiny);
    // Renamed (not .weight or .bias: the engine does not read it), with a dtype that is not a string.
    editHeader(st(dir), (x) => {
      x['model.norm.scale'] = { ...x['model.norm.weight'], dtype: 7 };
      delete x['model.norm.weight'];
    });
    expect(await loadError(dir)).toBe(`${st(dir)}: tensor model.norm.scale has dtype 7, not a string`);
  });

  it('a null header', async () => {
    const dir = copy(tiny);
    const { n } = header(st(dir));
    const buf = readFileSync(st(dir));
    Buffer.from('null'.padEnd(n, ' ')).copy(buf, 8);
    writeFileSync(st(dir), buf);
    expect(await loadError(dir)).toBe(`${st(dir)}: safetensors header is null, not a JSON object`);
  });

  it('a shape that does not match config.json names the file once', async () => {
    const dir = copy(tiny);
    editConfig(dir, (c) => (c.intermediate_size = 32));
    expect(await loadError(dir)).toBe(`${st(dir)}: tensor model.layers.0.mlp.gate_proj.weight has shape [64, 32], expected [32, 32]`);
  });
});

describe('weights that are not finite', () => {
  // IEEE bit patterns, little-endian: F32 NaN 0x7fc00000, F16 +Inf 0x7c00, BF16 -Inf 0xff80.
  it.each([
    ['F32 NaN', tiny, 'model.layers.1.mlp.down_proj.weight', [0x00, 0x00, 0xc0, 0x7f], 37],
    ['F16 Inf', path.join(fixtures, 'mistral'), 'model.layers.0.self_attn.v_proj.weight', [0x00, 0x7c], 5],
    ['BF16 -Inf', defaultModel, 'model.embed_tokens.weight', [0x80, 0xff], 1000],
  ])('%s', async (_, src, name, bytes, index) => {
    const dir = copy(src);
    poke(st(dir), name, index, bytes);
    const count = (header(st(dir)).h[name].shape as number[]).reduce((a, b) => a * b, 1);
    expect(await loadError(dir)).toBe(`${st(dir)}: tensor ${name} holds NaN or Inf values (the first at element ${index} of ${count})`);
  });

  it('through the CLI', async () => {
    const dir = copy(defaultModel);
    poke(st(dir), 'model.norm.weight', 3, [0xc0, 0x7f]);
    expect(await evalError(dir)).toBe(`${st(dir)}: tensor model.norm.weight holds NaN or Inf values (the first at element 3 of 256)`);
  });

  // fp16 holds up to 65504: a norm weight of 60000 folded into a weight of 2 overflows it.
  it.skipIf(!gpuTests('the fp16-overflow test'))('a weight that overflows fp16 on the GPU', async () => {
    const dir = copy(path.join(fixtures, 'mistral'));
    poke(st(dir), 'model.layers.0.input_layernorm.weight', 0, [0x53, 0x7b]);
    poke(st(dir), 'model.layers.0.self_attn.q_proj.weight', 0, [0x00, 0x40]);
    const folder = openModelFolder(dir);
    await expect(loadModel(folder.spec, folder.dir, 'cuda')).rejects.toThrow(
      `${folder.dir}: weights model.layers.0.self_attn.{q,k,v}_proj.weight (times input_layernorm.weight) overflow fp16 on the GPU (NaN or Inf after conversion)`,
    );
  });
});

describe('config.json ranges', () => {
  it.each<[string, (c: Record<string, any>) => void, string]>([
    ['rope_theta 0', (c) => (c.rope_parameters.rope_theta = 0), '"rope_theta" must be a positive number, got 0'],
    ['rope_theta negative (transformers 4 form)', (c) => { delete c.rope_parameters; c.rope_theta = -10000; }, '"rope_theta" must be a positive number, got -10000'],
    ['negative rms_norm_eps', (c) => (c.rms_norm_eps = -1e-5), '"rms_norm_eps" must be a positive number, got -0.00001'],
    ['rope scaling factor 0', (c) => (c.rope_parameters = { rope_type: 'linear', rope_theta: 1e6, factor: 0 }), '"factor" must be a positive number, got 0'],
    ['llama3 factors the wrong way round', (c) => (c.rope_parameters = { rope_type: 'llama3', rope_theta: 1e6, factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8192 }), '"high_freq_factor" (1) must be greater than "low_freq_factor" (4)'],
    ['rope_scaling an array', (c) => { delete c.rope_parameters; c.rope_scaling = [1]; }, '"rope_scaling" must be an object'],
    ['vocab_size 0', (c) => (c.vocab_size = 0), '"vocab_size" must be a positive integer below 2^31, got 0'],
    ['hidden_size past 32 bits', (c) => (c.hidden_size = 2 ** 32), '"hidden_size" must be a positive integer below 2^31, got 4294967296'],
    ['negative max_position_embeddings', (c) => (c.max_position_embeddings = -1), '"max_position_embeddings" must be a positive integer below 2^31, got -1'],
    ['intermediate_size 1.5', (c) => (c.intermediate_size = 1.5), '"intermediate_size" must be a positive integer below 2^31, got 1.5'],
    ['odd head_dim', (c) => (c.head_dim = 63), '"head_dim" must be even for RoPE, got 63'],
    ['heads not dividing hidden_size without head_dim', (c) => { delete c.head_dim; c.num_attention_heads = 3; c.num_key_value_heads = 1; }, 'hidden_size (256) is not a multiple of num_attention_heads (3), and no "head_dim" is given'],
    ['kv heads not dividing heads', (c) => (c.num_key_value_heads = 3), 'num_attention_heads (4) is not a multiple of num_key_value_heads (3)'],
    ['sliding_window 0', (c) => (c.sliding_window = 0), '"sliding_window" must be a positive integer below 2^31, got 0'],
    ['an unknown rope type', (c) => (c.rope_parameters = { rope_type: 'ntk', rope_theta: 1e6 }), 'rope_parameters.rope_type "ntk" is not supported (supported: default, linear, dynamic, llama3, yarn, longrope)'],
    ['an unknown rope field', (c) => (c.rope_parameters = { rope_type: 'yarn', rope_theta: 1e6, factor: 4, original_max_position_embeddings: 4096, beta: 3 }), 'rope_parameters.beta is not a field of rope type "yarn" (its fields: factor, original_max_position_embeddings, attention_factor, beta_fast, beta_slow, mscale, mscale_all_dim, truncate, finetuned, rope_theta)'],
    ['a rope field of another type (transformers 4 spelling)', (c) => { delete c.rope_parameters; c.rope_scaling = { type: 'linear', factor: 2, low_freq_factor: 1 }; }, 'rope_scaling.low_freq_factor is not a field of rope type "linear" (its fields: factor, rope_theta)'],
    ['yarn past its own length', (c) => (c.rope_parameters = { rope_type: 'yarn', rope_theta: 1e6, factor: 4, original_max_position_embeddings: 65536 }), 'original_max_position_embeddings (65536) exceeds max_position_embeddings (33024)'],
    ['yarn beta_fast below beta_slow', (c) => (c.rope_parameters = { rope_type: 'yarn', rope_theta: 1e6, factor: 4, original_max_position_embeddings: 4096, beta_fast: 1, beta_slow: 8 }), 'rope_parameters.beta_fast (1) must not be below beta_slow (8)'],
    ['longrope factors of the wrong count', (c) => (c.rope_parameters = { rope_type: 'longrope', rope_theta: 1e6, original_max_position_embeddings: 4096, short_factor: [1, 1], long_factor: [2, 2] }), '"short_factor" has 2 factors, but head_dim/2 is 32'],
    ['a partial rotary factor', (c) => (c.rope_parameters.partial_rotary_factor = 0.5), 'partial_rotary_factor 0.5 is not supported (the engine rotates whole heads: 1)'],
    ['layer_types of the wrong count', (c) => { c.architectures = ['Qwen2ForCausalLM']; c.use_sliding_window = true; c.sliding_window = 64; c.layer_types = ['full_attention']; }, '"layer_types" lists 1 layers, but num_hidden_layers is 6'],
    ['an unknown layer type', (c) => { c.architectures = ['MistralForCausalLM']; c.sliding_window = 64; c.layer_types = Array(6).fill('chunked_attention'); }, 'layer_types entry "chunked_attention" is not supported (supported: full_attention, sliding_attention)'],
    ['a Gemma activation other than tanh GELU', (c) => { c.architectures = ['Gemma2ForCausalLM']; c.hidden_activation = 'gelu'; }, 'hidden_activation "gelu" is not supported (supported: gelu_pytorch_tanh)'],
    ['an unknown Gemma 3 layer type in rope_parameters', (c) => { c.architectures = ['Gemma3ForCausalLM']; c.rope_parameters = { full_attention: { rope_type: 'default' }, chunked_attention: { rope_type: 'default' } }; }, 'rope_parameters.chunked_attention is not a layer type of Gemma 3 (its layer types: full_attention, sliding_attention)'],
    ['sliding layers without a window', (c) => { c.architectures = ['Qwen2ForCausalLM']; c.layer_types = Array(6).fill('sliding_attention'); }, '"layer_types" has sliding_attention layers, but no sliding window is on ("sliding_window", "use_sliding_window")'],
  ])('%s', async (_, edit, message) => {
    const dir = copy(defaultModel);
    editConfig(dir, edit);
    expect(await loadError(dir)).toBe(`${cfgPath(dir)}: ${message}`);
  });

  it('through the CLI', async () => {
    const dir = copy(defaultModel);
    editConfig(dir, (c) => (c.rope_parameters.rope_theta = -1));
    expect(await evalError(dir)).toBe(`${cfgPath(dir)}: "rope_theta" must be a positive number, got -1`);
  });
});

describe('tokenizer.json', () => {
  it('an empty vocabulary', () => {
    const dir = copy(tiny);
    const file = path.join(dir, 'tokenizer.json');
    const tok = JSON.parse(readFileSync(file, 'utf8'));
    tok.model.vocab = {};
    tok.added_tokens = [];
    writeFileSync(file, JSON.stringify(tok));
    expect(() => loadTokenizer(dir)).toThrow(`${file}: model.vocab is empty`);
  });
});

describe('sharded models', () => {
  /** The tiny model as one shard listed by an index, the shard at `shardPath` (relative to the folder). */
  function sharded(shardPath: string): string {
    const dir = copy(tiny);
    const target = path.resolve(dir, shardPath);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, readFileSync(st(dir)));
    rmSync(st(dir));
    const names = Object.keys(header(target).h).filter((k) => k !== '__metadata__');
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: Object.fromEntries(names.map((k) => [k, shardPath])) }));
    return dir;
  }

  it('a shard in a subfolder loads', async () => {
    const dir = sharded('shards/model-00001-of-00001.safetensors');
    const folder = openModelFolder(dir);
    expect(folder.spec.tensors[0].file).toBe(path.join(dir, 'shards', 'model-00001-of-00001.safetensors'));
    await loadModel(folder.spec, folder.dir, 'cpu');
  });

  it('a shard path with ../ that leaves the folder is not followed', async () => {
    const dir = sharded('../outside.safetensors');
    expect(await loadError(dir)).toBe(`${path.join(dir, 'model.safetensors.index.json')}: shard ../outside.safetensors is outside the model folder`);
  });

  it('an absolute shard path outside the folder', async () => {
    const dir = copy(tiny);
    const index = path.join(dir, 'model.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ weight_map: { 'model.norm.weight': st(tiny) } }));
    expect(await loadError(dir)).toBe(`${index}: shard ${st(tiny)} is outside the model folder`);
  });

  it('numeric weight_map values', async () => {
    const dir = copy(tiny);
    const index = path.join(dir, 'model.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ weight_map: { 'model.norm.weight': 1 } }));
    expect(await loadError(dir)).toBe(`${index}: weight_map["model.norm.weight"] is 1, not a shard file name`);
  });

  it('through the CLI', async () => {
    const dir = copy(defaultModel);
    const index = path.join(dir, 'model.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ weight_map: { 'model.norm.weight': '../../model.safetensors' } }));
    expect(await evalError(dir)).toBe(`${index}: shard ../../model.safetensors is outside the model folder`);
  });
});

describe('model files that are not regular files', () => {
  it('a FIFO named model.safetensors is refused at once, not waited on', async () => {
    const dir = copy(defaultModel);
    rmSync(st(dir));
    expect(spawnSync('mkfifo', [st(dir)]).status).toBe(0);
    expect(await loadError(dir)).toBe(`${st(dir)}: a safetensors file must be a regular file, not a FIFO`);
    expect(await evalError(dir)).toBe(`${st(dir)}: a safetensors file must be a regular file, not a FIFO`);
  });

  it('a directory named model.safetensors', async () => {
    const dir = copy(tiny);
    rmSync(st(dir));
    mkdirSync(st(dir));
    expect(await loadError(dir)).toBe(`${st(dir)}: a safetensors file must be a regular file, not a directory`);
  });

  it('a FIFO named config.json', async () => {
    const dir = copy(tiny);
    rmSync(cfgPath(dir));
    expect(spawnSync('mkfifo', [cfgPath(dir)]).status).toBe(0);
    expect(await loadError(dir)).toBe(`${cfgPath(dir)}: config.json must be a regular file, not a FIFO`);
  });

  it('a directory named tokenizer.json', () => {
    const dir = copy(tiny);
    const file = path.join(dir, 'tokenizer.json');
    rmSync(file);
    mkdirSync(file);
    expect(() => loadTokenizer(dir)).toThrow(`${file}: tokenizer.json must be a regular file, not a directory`);
  });
});
