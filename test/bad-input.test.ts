// Every malformed input gives one line naming the file and what is wrong, and a non-zero
// exit: never a native crash.
import { rmSync, writeFileSync, readFileSync, truncateSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyModel, defaultModel, editHeader, quest, tempDir as tempDirOf } from './helpers.js';

async function evalError(dir: string, extra: string[] = []) {
  const r = await quest(['eval', '--model', dir, '--limit', '1', '--lengths', '256', '--output-path', path.join(dir, 'out'), ...extra]);
  expect(r.exitCode).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^quest: /);
  return lines[0];
}

const st = (dir: string) => path.join(dir, 'model.safetensors');
const cfgPath = (dir: string) => path.join(dir, 'config.json');
const editConfig = (dir: string, edit: (c: Record<string, unknown>) => void) => {
  const c = JSON.parse(readFileSync(cfgPath(dir), 'utf8'));
  edit(c);
  writeFileSync(cfgPath(dir), JSON.stringify(c));
};

describe('bad model folders', () => {
  it('missing config.json', async () => {
    const dir = copyModel(defaultModel);
    rmSync(cfgPath(dir));
    expect(await evalError(dir)).toContain(`${cfgPath(dir)}: missing`);
  });

  it('malformed config.json', async () => {
    const dir = copyModel(defaultModel);
    writeFileSync(cfgPath(dir), '{"hidden_size": 256,');
    expect(await evalError(dir)).toContain(`${cfgPath(dir)}: config.json is not valid JSON`);
  });

  it('config.json with a field of the wrong type', async () => {
    const dir = copyModel(defaultModel);
    editConfig(dir, (c) => (c.num_hidden_layers = 'four'));
    expect(await evalError(dir)).toContain('"num_hidden_layers" must be a number');
  });

  it('unknown architecture', async () => {
    const dir = copyModel(defaultModel);
    editConfig(dir, (c) => (c.architectures = ['GPT2LMHeadModel']));
    expect(await evalError(dir)).toContain('unknown architecture "GPT2LMHeadModel"');
  });

  it('safetensors offsets past the end of the file', async () => {
    const dir = copyModel(defaultModel);
    const size = statSync(st(dir)).size;
    editHeader(st(dir), (h) => (h['model.norm.weight'].data_offsets = [size, size + 512]));
    const msg = await evalError(dir);
    expect(msg).toContain(st(dir));
    expect(msg).toMatch(/model\.norm\.weight ends at data offset \d+, past the end of the file/);
  });

  it('a truncated safetensors file', async () => {
    const dir = copyModel(defaultModel);
    truncateSync(st(dir), statSync(st(dir)).size - 4096);
    const msg = await evalError(dir);
    expect(msg).toContain(st(dir));
    expect(msg).toContain('past the end of the file');
  });

  it('unknown dtype', async () => {
    const dir = copyModel(defaultModel);
    editHeader(st(dir), (h) => (h['model.norm.weight'].dtype = 'F8'));
    expect(await evalError(dir)).toContain('tensor model.norm.weight has dtype F8; supported: F32, F16, BF16');
  });

  it('a shape that does not match its bytes', async () => {
    const dir = copyModel(defaultModel);
    editHeader(st(dir), (h) => (h['model.norm.weight'].shape = [512]));
    expect(await evalError(dir)).toContain('tensor model.norm.weight is BF16[512] (1024 bytes) but spans 512 bytes');
  });

  it('a shape that does not match config.json', async () => {
    const dir = copyModel(defaultModel);
    editHeader(st(dir), (h) => {
      h['model.norm.weight'].shape = [128, 2];
    });
    const msg = await evalError(dir);
    expect(msg).toContain(st(dir));
    expect(msg).toContain('tensor model.norm.weight has shape [128, 2], expected [256]');
  });

  it('a missing tensor', async () => {
    const dir = copyModel(defaultModel);
    editHeader(st(dir), (h) => {
      h['model.layers.3.mlp.up_proj.xweight'] = h['model.layers.3.mlp.up_proj.weight'];
      delete h['model.layers.3.mlp.up_proj.weight'];
    });
    expect(await evalError(dir)).toContain('missing tensor model.layers.3.mlp.up_proj.weight');
  });

  it('a tokenizer.json that does not parse', async () => {
    const dir = copyModel(defaultModel);
    writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": ');
    expect(await evalError(dir)).toContain(`${path.join(dir, 'tokenizer.json')}: tokenizer.json is not valid JSON`);
  });

  it('a tokenizer.json the library cannot load', async () => {
    const dir = copyModel(defaultModel);
    writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "NoSuchModel"}}');
    expect(await evalError(dir)).toContain(`${path.join(dir, 'tokenizer.json')}: not a tokenizer the library can load`);
  });

  it('a length over the model\'s positions, before any sample is made', async () => {
    const dir = copyModel(defaultModel);
    editConfig(dir, (c) => (c.max_position_embeddings = 4096));
    const r = await quest(['eval', '--model', dir, '--lengths', '1024,100000000', '--output-path', path.join(dir, 'out')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: --lengths 100000000: ${cfgPath(dir)} allows 4096 positions`);
  });

  it('a context longer than the model allows', async () => {
    const dir = copyModel(defaultModel);
    // The length fits, but the prompt plus its 10 generated tokens do not.
    editConfig(dir, (c) => (c.max_position_embeddings = 256));
    const msg = await evalError(dir);
    expect(msg).toBe(`quest: --lengths 256: passkey generates 10 tokens after a prompt of that length, 266 positions, but ${cfgPath(dir)} allows 256 (at most 246 for passkey)`);
  });
});

describe('bad flags and configs', () => {
  it('names a bad flag value', async () => {
    const r = await quest(['eval', '--lengths', '1024,abc']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('quest: --lengths: "abc" is not a positive integer');
  });

  it.each([
    [['--policies', 'dense,qeust'], 'quest: --policies: unknown policy "qeust" (known: dense, quest, h2o, streaming, tova, snapkv, oracle-topk)'],
    [['--policies', 'quest', '--budgets', '64,0'], 'quest: --budgets: "0" is not a positive integer or a fraction of the context in (0, 1] such as 0.05c'],
    [['--policies', 'quest', '--budgets', '64,1.5'], 'quest: --budgets: "1.5" is not a positive integer or a fraction of the context in (0, 1] such as 0.05c'],
    [['--policies', 'quest', '--budgets', '1.5c'], 'quest: --budgets: "1.5c" is not a positive integer or a fraction of the context in (0, 1] such as 0.05c'],
    [['--policies', 'quest', '--budgets', '8'], 'quest: --budgets: 8 is smaller than a page (--page-size 16)'],
    [['--policies', 'quest', '--page-size', '12'], 'quest: --page-size: 12 is not a power of two'],
    [['--policies', 'snapkv', '--budgets', '32'], "quest: --budgets: 32 does not exceed snapkv's --snapkv-window (32)"],
    [['--quest-gqa', 'per-head'], 'quest: --quest-gqa: "per-head" is not one of group, per-query-head'],
  ])('names the flag of bad policy input %j', async (args, message) => {
    const r = await quest(['eval', '--limit', '1', ...args]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(message);
  });

  it.each([
    [['--tasks', 'passkey', '--haystack-file', '/nonexistent.txt'], 'quest: --haystack-file /nonexistent.txt: no such file'],
    [['--tasks', 'perplexity', '--text-file', '/nonexistent.txt'], 'quest: --text-file /nonexistent.txt: no such file'],
    [['--qa-file', '/nonexistent.json'], 'quest: --qa-file /nonexistent.json: no such file'],
    [['--longbench-dir', '/nonexistent'], 'quest: --longbench-dir /nonexistent: no such folder'],
    [['--output-path', '/dev/null/x'], "quest: --output-path /dev/null/x: cannot create it (ENOTDIR: not a directory, mkdir '/dev/null/x')"],
  ])('names a named input that is not there %j, whatever the tasks', async (args, message) => {
    const r = await quest(['eval', '--limit', '1', ...args]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(message);
  });

  it('bench-latency names an output folder it cannot make before measuring', async () => {
    const r = await quest(['bench-latency', '--model', 'tiny', '--lengths', '64', '--output-path', '/dev/null/x']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/^quest: --output-path \/dev\/null\/x: cannot create it/);
    expect(r.stdout).toBe('');
  });

  it('names an unknown task', async () => {
    const r = await quest(['eval', '--tasks', 'nope', '--limit', '1']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/^quest: --tasks: unknown task "nope"/);
    const g = await quest(['tasks', 'generate', '--task', 'nope', '--length', '100', '-n', '1', '--out', path.join(tempDirOf(), 'x.jsonl')]);
    expect(g.exitCode).toBe(1);
    expect(g.stderr.trim()).toMatch(/^quest: --task: unknown task "nope"/);
  });

  it('names an unknown key in a config file', async () => {
    const dir = copyModel(defaultModel);
    const file = path.join(dir, 'run.yaml');
    writeFileSync(file, 'tasks: [passkey]\nbudgetz: [1]\n');
    const r = await quest(['eval', '--config', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: ${file}: unknown key "budgetz"; did you mean "budgets"?`);
  });

  it('names a --model that is a file', async () => {
    const r = await quest(['eval', '--model', path.join(defaultModel, 'config.json')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/^quest: --model .*config\.json: not a folder/);
  });

  it.each([
    [['--head-dim', '80'], 'quest: --head-dim: 80 is not 64, 96, 128 or 256'],
    [['--kv-heads', '5'], 'quest: --kv-heads: 32 heads over 5 KV heads is not a group of 1, 2, 4 or 8'],
    [['--torch', '/nonexistent.json'], 'quest: --torch /nonexistent.json: no such file'],
    [['--budgets', '2048,8'], 'quest: --budgets: 8 is smaller than a page (16 tokens)'],
  ])('bench-attention names a bad %j before looking for a GPU', async (args, message) => {
    const r = await quest(['bench-attention', ...args]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(message);
  });

  it.each([
    [['--batch', '9'], "quest: --batch: 9 rows; bench-linear takes 1 to 8, the 4-bit GEMV's most (a larger batch runs in parts of 8)"],
    [['--model', 'no-such-model'], /^quest: --model no-such-model: not a model folder or a preset/],
  ])('bench-linear names a bad %j before looking for a GPU', async (args, message) => {
    const r = await quest(['bench-linear', ...args]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(message);
  });

  it('bench-attention refuses torch timings of another shape', async () => {
    const file = path.join(tempDirOf(), 'torch.json');
    writeFileSync(file, JSON.stringify({ shape: { heads: 8, kvHeads: 8, headDim: 128, pageSize: 16 }, rows: [] }));
    const r = await quest(['bench-attention', '--torch', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/--torch .*torch\.json: timed \{"heads":8,"kvHeads":8,"headDim":128,"pageSize":16\}, not \{"heads":32,/);
  });

  it('names a model that is neither a folder nor a preset', async () => {
    const r = await quest(['bench-latency', '--model', 'no-such-model']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/^quest: --model no-such-model: not a model folder or a preset/);
  });
});
