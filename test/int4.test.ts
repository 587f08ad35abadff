// 4-bit checkpoints (issue #23) beyond the parity fixtures: the fixtures' quantizer round-trips
// (unpacked here by the formats' rules, apart from the engine), GPTQ v1's stored zero - 1
// matters, and a quantization config or packed tensor the engine does not serve is refused in
// one line naming the file and field. The logits themselves: test/parity.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { copyModel, editHeader, fixtures, quest, relDiff } from './helpers.js';

const tensorsOf = (file: string) => {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  return (name: string) => {
    const [begin, end] = header[name].data_offsets;
    return new Uint32Array(buf.buffer.slice(buf.byteOffset + 8 + n + begin, buf.byteOffset + 8 + n + end));
  };
};

// AutoAWQ's pack order (awq/modules/linear/gemm.py): nibble i of a word holds column 8j + ORDER[i].
const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];
const nib = (w: number, k: number) => (w >>> (4 * k)) & 15;

describe.each(['awq-llama', 'awq-qwen2', 'gptq-llama', 'gptq-qwen2'])('%s', (name) => {
  const dir = path.join(fixtures, name);
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));

  it("packs the quantizer's integers so that they unpack to themselves", () => {
    const q = expected.quantization;
    const get = tensorsOf(path.join(dir, 'model.safetensors'));
    const prefix: string = expected.roundtrip;
    expect(prefix).toMatch(/mlp\.down_proj$/);
    const spec = openModelFolder(dir).spec;
    const [out, inp] = [spec.hiddenSize, spec.intermediateSize];
    const groups = inp / q.group_size;
    const qweight = get(`${prefix}.qweight`);
    const qzeros = get(`${prefix}.qzeros`);
    const ints = new Uint8Array(out * inp + groups * out);
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inp; i++)
        ints[o * inp + i] = q.quant_method === 'awq' ? nib(qweight[i * (out / 8) + (o >> 3)], AWQ_ORDER.indexOf(o % 8)) : nib(qweight[(i >> 3) * out + o], i % 8);
    const v1 = q.quant_method === 'gptq' && q.checkpoint_format === 'gptq';
    for (let g = 0; g < groups; g++)
      for (let o = 0; o < out; o++) {
        const w = qzeros[g * (out / 8) + (o >> 3)];
        ints[out * inp + g * out + o] = (q.quant_method === 'awq' ? nib(w, AWQ_ORDER.indexOf(o % 8)) : nib(w, o % 8)) + (v1 ? 1 : 0);
      }
    const recorded = new Uint8Array(readFileSync(path.join(dir, 'quantized.u8')));
    expect(Array.from(ints)).toEqual(Array.from(recorded));
  });
});

describe('GPTQ v1 zeros', () => {
  it('read without their +1 miss transformers logits', async () => {
    const dir = path.join(fixtures, 'gptq-llama');
    const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const ref = new Float32Array(readFileSync(path.join(dir, 'logits.f32')).buffer.slice(0));
    const spec = openModelFolder(dir).spec;
    const model = await loadModel({ ...spec, quant: { ...spec.quant!, zeroOffset: 0 } }, dir);
    const seq = model.createSequence({ policy: 'dense', budget: 0, pageSize: 16, denseLayers: 2 });
    expect(relDiff(await seq.prefill(Int32Array.from(expected.prompt_ids), true), ref)).toBeGreaterThan(100 * 1e-4);
  });
});

describe('4-bit checkpoints the engine does not serve', () => {
  const variant = (src: string, edit: (q: Record<string, unknown>) => void) => {
    const dir = copyModel(path.join(fixtures, src));
    const file = path.join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(file, 'utf8'));
    edit(cfg.quantization_config);
    writeFileSync(file, JSON.stringify(cfg));
    return dir;
  };
  const refused = (dir: string, message: RegExp) => expect(() => openModelFolder(dir)).toThrow(message);

  it('refuse bits, desc_act, quant_method, format and group size, naming the field', () => {
    refused(variant('awq-llama', (q) => (q.bits = 8)), /config\.json: quantization_config\.bits is 8; only 4-bit/);
    refused(variant('gptq-llama', (q) => (q.desc_act = true)), /config\.json: quantization_config\.desc_act true \(act-order\) is not served/);
    refused(variant('awq-llama', (q) => (q.quant_method = 'bitsandbytes')), /config\.json: quantization_config\.quant_method "bitsandbytes" is not served \(served: awq, gptq\)/);
    refused(variant('awq-llama', (q) => (q.version = 'gemv')), /quantization_config\.version "gemv" is not served/);
    refused(variant('gptq-qwen2', (q) => (q.checkpoint_format = 'marlin')), /quantization_config\.checkpoint_format "marlin" is not served/);
    refused(variant('gptq-llama', (q) => delete q.bits), /config\.json: quantization_config\.bits is null; only 4-bit/);
    refused(variant('awq-llama', (q) => (q.group_size = 48)), /config\.json: quantization_config\.group_size 48 does not divide model\.layers\.0\.self_attn\.q_proj's 128 input features/);
  });

  it('refuse a packed tensor whose shape disagrees with the config, naming the file and tensor', () => {
    // group_size 64 against tensors packed in groups of 32: scales and qzeros have twice the rows.
    refused(variant('awq-llama', (q) => (q.group_size = 64)), /model\.safetensors: tensor model\.layers\.0\.self_attn\.q_proj\.qzeros has shape \[4,16\], but AWQ packing of a 128x128 layer in groups of 64 \(quantization_config\.group_size, .*config\.json\) needs \[2,16\]/);
    const dir = copyModel(path.join(fixtures, 'gptq-llama'));
    editHeader(path.join(dir, 'model.safetensors'), (h) => (h['model.layers.1.mlp.up_proj.qweight'].dtype = 'F32'));
    refused(dir, /model\.safetensors: tensor model\.layers\.1\.mlp\.up_proj\.qweight has dtype F32; supported: I32 \(packed 4-bit\)/);
    const head = copyModel(path.join(fixtures, 'awq-llama'));
    editHeader(path.join(head, 'model.safetensors'), (h) => {
      h['lm_head.qweight'] = { ...h['lm_head.weight'], dtype: 'I32', shape: [128, 128] }; // the same bytes
      delete h['lm_head.weight'];
    });
    refused(head, /model\.safetensors: tensor lm_head\.qweight: a 4-bit LM head is not served/);
  });

  it('refuse act-order g_idx at load, naming the file and tensor', async () => {
    const dir = copyModel(path.join(fixtures, 'gptq-llama'));
    const file = path.join(dir, 'model.safetensors');
    const buf = readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const [begin] = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'))['model.layers.0.mlp.down_proj.g_idx'].data_offsets;
    buf.writeInt32LE(3, 8 + n + begin); // input 0 in group 3
    writeFileSync(file, buf);
    const folder = openModelFolder(dir);
    await expect(loadModel(folder.spec, dir)).rejects.toThrow(/model\.safetensors: tensor model\.layers\.0\.mlp\.down_proj\.g_idx\[0\] is 3, not 0: act-order/);
  });

  it('quest models check names the format, and the field that stops a folder', async () => {
    const ok = await quest(['models', 'check', path.join(fixtures, 'gptq-qwen2')]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/gptq-qwen2: qwen2, GPTQ 4-bit, group size 64, 2 layers/);
    expect(ok.stdout).toMatch(/^cpu +served$/m);
    const bad = await quest(['models', 'check', variant('awq-qwen2', (q) => (q.bits = 3))]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^quest: .*config\.json: quantization_config\.bits is 3; only 4-bit weights are served$/);
  });
});
