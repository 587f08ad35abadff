// 4-bit weights on the GPU (issue #23): the W4A16 GEMV (decode steps, up to 8 rows; an fp16
// model's two kernels, half2 and tensor cores, each layer's by its shape) and the prefill's
// dequantize-then-GEMM against the CPU engine, which dequantizes exactly and matches
// transformers (test/parity.test.ts), on the AWQ and GPTQ fixtures; the GEMV's wide layers
// against the prefill's GEMM; and the bytes a decode step of an AWQ preset reads. Skipped,
// with a message, where no GPU is (QUEST_REQUIRE_GPU=1: they fail).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type NativeModel, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { PRESETS } from '../src/model/presets.js';
import { randint, rng } from '../src/tasks/rng.js';
import { DERIVED_FP16, enginePair, fixtures, gpuTests, quest, relDiff, tempDir } from './helpers.js';

const gpu = gpuTests('GPU 4-bit tests');

// The bound is derived from the arithmetic (40 units of fp16 roundoff of the weights and staged
// inputs, relative to the largest logit), as for gpu-model's own GEMM.
const BOUND = DERIVED_FP16;
const next = rng(20261206);
const opts = (policy = 'dense'): NativeSequenceOptions => ({ policy, budget: 0, pageSize: 16, denseLayers: 0 });

describe.skipIf(!gpu).each(['awq-llama', 'awq-qwen2', 'gptq-llama', 'gptq-qwen2'])('%s on the GPU', (name) => {
  const dir = path.join(fixtures, name);
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const folder = openModelFolder(dir);
  let cpu: NativeModel;
  let dev: NativeModel;
  const pair = enginePair(folder.spec, dir);
  const both = async () => void ({ cpu, dev } = await pair());

  it('prefills (dequantized weights, GEMM) to transformers logits', async () => {
    await both();
    const ref = new Float32Array(readFileSync(path.join(dir, 'logits.f32')).buffer.slice(0));
    const seq = dev.createSequence(opts());
    const d = relDiff(await seq.prefill(Int32Array.from(expected.prompt_ids), true), ref);
    seq.close();
    console.log(`observed-error ${name} transformers int4-gpu ${d.toExponential(2)} (bound ${BOUND})`);
    expect(d).toBeLessThan(BOUND);
  });

  it('decodes (the W4A16 GEMV) as the CPU engine does', async () => {
    await both();
    const prompt = Int32Array.from(expected.prompt_ids);
    const [a, b] = [cpu.createSequence(opts()), dev.createSequence(opts())];
    await a.prefill(prompt);
    await b.prefill(prompt);
    let worst = 0;
    // Single tokens, then feeds of 3 and 8 tokens (a decode step each; the GEMV over several rows is the batch's, below).
    for (const n of [1, 1, 1, 3, 8]) {
      const fed = Int32Array.from({ length: n }, () => randint(next, 3, folder.spec.vocabSize - 1));
      worst = Math.max(worst, relDiff(await b.feed(fed), await a.feed(fed)));
    }
    console.log(`observed-error ${name} decode int4-gpu ${worst.toExponential(2)} (bound ${BOUND})`);
    expect(worst).toBeLessThan(BOUND);
    a.close();
    b.close();
  });

  it('decodes a batch of 10 sequences (the GEMV over 8 rows, then 2) exactly as each alone', async () => {
    await both();
    const prompt = Int32Array.from(expected.prompt_ids);
    const make = async (n: number) => {
      const s = dev.createSequence(opts());
      await s.prefill(prompt.subarray(0, n));
      return s;
    };
    const lengths = Array.from({ length: 10 }, (_, i) => prompt.length - 3 * i);
    const fed = Int32Array.from({ length: 4 }, () => randint(next, 3, folder.spec.vocabSize - 1));
    const batch = await Promise.all(lengths.map(make));
    const nll = await dev.nllBatch(batch, fed);
    for (const [i, n] of lengths.entries()) {
      const alone = await make(n);
      expect(Array.from(nll[i]), `sequence ${i}`).toEqual(Array.from(await alone.nll(fed)));
      alone.close();
    }
    for (const s of batch) s.close();
  });
});

// The half2 GEMV splits its input over 1, 2 or 4 warps by a layer's output rows; the fixtures'
// layers all take 4, and their down projections (256 inputs, 128 outputs) run on tensor cores.
// At the 7B's width, QKV (12,288 rows) takes 2, O 4; gate and up of an intermediate size of
// 4096 (8,192 rows) take 2, of 8192 take 1, and each lane loops over several chunks; the down
// projection of 8192 inputs runs on tensor cores (16-row tiles split by gemv_split, several
// steps a warp), of 4096 in half2. Such a random-weight AWQ model's GEMV, over one row (decode
// steps) and eight (a prefill of 8 tokens), against its own prefill of more tokens (dequantized
// weights and the GEMM, no GEMV), position by position.
describe.skipIf(!gpu).each([4096, 8192])('a random AWQ model of intermediate size %i on the GPU', (I) => {
  it('computes each position with the GEMV as its prefill does', async () => {
    const s = { ...PRESETS['llama-2-7b-awq'], numLayers: 2, intermediateSize: I, vocabSize: 512 };
    const model = await loadModel({ ...s, tensors: [], randomWeights: true, randomSeed: 3 }, `awq-${I}`, 'cuda');
    const V = s.vocabSize;
    const ids = Int32Array.from({ length: 24 }, () => randint(next, 3, V - 1));
    const at = (logits: Float32Array, t: number) => logits.subarray(t * V, (t + 1) * V);
    const whole = model.createSequence(opts());
    const all = await whole.prefill(ids, true);
    let worst = 0;
    const eight = model.createSequence(opts());
    const rows8 = await eight.prefill(ids.subarray(0, 8), true);
    for (let t = 0; t < 8; t++) worst = Math.max(worst, relDiff(at(rows8, t), at(all, t)));
    const stepped = model.createSequence(opts());
    await stepped.prefill(ids.subarray(0, 16));
    for (let t = 16; t < ids.length; t++) worst = Math.max(worst, relDiff(await stepped.feed(ids.subarray(t, t + 1)), at(all, t)));
    for (const seq of [whole, eight, stepped]) seq.close();
    console.log(`observed-error awq-${I} GEMV against prefill ${worst.toExponential(2)} (bound ${BOUND})`);
    expect(worst).toBeLessThan(BOUND);
  });
});

describe.skipIf(!gpu)('an AWQ preset on the GPU', () => {
  it('reads its packed bytes a decode step: half a byte a weight, a (scale, zero) pair of fp16 a group, the norms in fp32', async () => {
    const s = PRESETS['llama-2-7b-awq'];
    const g = s.quant!.groupSize;
    const H = s.hiddenSize, I = s.intermediateSize, qd = s.numHeads * s.headDim, kvd = s.numKvHeads * s.headDim;
    const packed = (out: number, inp: number, norm: boolean) => (out * inp) / 2 + out * (inp / g) * 4 + (norm ? inp * 4 : 0);
    const layer = packed(qd + 2 * kvd, H, true) + packed(H, qd, false) + packed(2 * I, H, true) + packed(H, I, false);
    // One embedding row and the LM head (fp16, with the final norm folded in), as stored; the
    // rope's fp32 inverse frequencies.
    const expected = s.numLayers * layer + H * 2 + s.vocabSize * H * 2 + (s.headDim / 2) * 4;
    const model = await loadModel({ ...s, tensors: [], randomWeights: true, randomSeed: 1 }, 'llama-2-7b-awq', 'cuda');
    expect(model.weightBytes).toBe(expected);
  });
});

describe.skipIf(!gpu)('quest bench-linear on the GPU', () => {
  it("times each projection of llama-2-7b-awq's step alone and every layer's back to back, with the bytes each moves", async () => {
    const out = tempDir();
    const r = await quest(['bench-linear', '--model', 'llama-2-7b-awq', '--batch', '1,2', '--repeats', '3', '--output-path', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(res.kind).toBe('linear');
    // The preset's published shapes: 32 heads of 128, hidden 4096, intermediate 11008, vocab 32000, group 128.
    const packed = (out: number, inp: number) => (out * inp) / 2 + out * (inp / 128) * 4;
    const want: Record<string, [number, number, number]> = {
      qkv: [4096, 12288, packed(12288, 4096)],
      o: [4096, 4096, packed(4096, 4096)],
      gate_up: [4096, 22016, packed(22016, 4096)],
      down: [11008, 4096, packed(4096, 11008)],
      lm_head: [4096, 32000, 32000 * 4096 * 2],
    };
    // Five shapes at two batch sizes, and the 32 layers' four projections back to back at each.
    expect(res.rows).toHaveLength(12);
    for (const rows of [1, 2]) {
      const layer = ['qkv', 'o', 'gate_up', 'down'].reduce((sum, n) => sum + want[n][2] + 2 * rows * want[n][0] + 4 * rows * want[n][1], 0);
      const all = res.rows.find((r: { name: string; rows: number }) => r.name === 'layers' && r.rows === rows);
      expect(all.bytes).toBe(32 * layer);
      expect(all.ofCopy).toBeGreaterThan(0);
      expect(all.ofCopy).toBeLessThan(1.5);
    }
    for (const row of res.rows.filter((r: { name: string }) => r.name !== 'layers')) {
      const [inp, outp, weights] = want[row.name];
      const act = row.name === 'lm_head' ? 4 : 2;  // a 16-bit layer reads fp32 rows, a 4-bit one the staged fp16 rows
      expect([row.in, row.out]).toEqual([inp, outp]);
      // The down projection (at least twice as many inputs as outputs) on tensor cores, the others in half2; the LM head stored in fp16.
      expect(row.kernel).toBe(row.name === 'lm_head' ? 'fp16, tensor cores' : row.name === 'down' ? '4-bit, tensor cores' : '4-bit, half2');
      expect(row.stagedUs).toBeGreaterThan(0);
      expect(row.bytes).toBe(weights + act * row.rows * inp + 4 * row.rows * outp);
      // No kernel moves its bytes faster than a read-and-write copy by much (reading alone is a little faster).
      expect(row.us).toBeGreaterThan(0);
      expect(row.ofCopy).toBeGreaterThan(0);
      expect(row.ofCopy).toBeLessThan(1.5);
    }
  });
});
