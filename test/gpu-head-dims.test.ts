// The GPU's head_dims beyond 64 and 128, through a whole sequence against the CPU engine:
// 96 (Phi-3-mini's, MHA) and 256 (Gemma-2-9b's, groups of 2) on tiny models of the presets'
// random weights, so no fixture is needed. The kernels one by one are checked by
// test/cuda.test.ts. Bounds: 40 units of fp16 roundoff (DERIVED_FP16), as gpu-arch.test.ts derives
// them. Skipped, with a message, where no GPU is (QUEST_REQUIRE_GPU=1: they fail).
import { describe, expect, it } from 'vitest';
import { type NativeModel, type NativeModelSpec, type NativeSequenceOptions } from '../src/engine/index.js';
import { PRESETS } from '../src/model/presets.js';
import { randint, rng } from '../src/tasks/rng.js';
import { DERIVED_FP16, enginePair, gpuTests, nearTie, partedMargins, relDiff } from './helpers.js';

const gpu = gpuTests('GPU head_dim tests');

const tiny = (preset: string, shape: Partial<NativeModelSpec>): NativeModelSpec => ({
  ...PRESETS[preset],
  numLayers: 2,
  intermediateSize: 512,
  vocabSize: 512,
  ...shape,
  tensors: [],
  randomWeights: true,
  randomSeed: 22,
});
const models: [string, NativeModelSpec][] = [
  ['head_dim 96 (phi3, 4 heads over 4)', tiny('phi-3-mini-128k', { hiddenSize: 384, numHeads: 4, numKvHeads: 4, headDim: 96 })],
  ['head_dim 256 (llama, 4 heads over 2)', tiny('llama-2-7b', { hiddenSize: 512, numHeads: 4, numKvHeads: 2, headDim: 256 })],
];

const observed = (name: string, what: string, value: number) =>
  console.log(`observed-error ${name} ${what} ${value.toExponential(2)} (bound ${DERIVED_FP16}, derived)`);

describe.skipIf(!gpu).each(models)('%s on the GPU', (name, spec) => {
  const opts = (policy: string, budget = 0, denseLayers = 0): NativeSequenceOptions => ({ policy, budget, pageSize: 16, denseLayers });
  const tokens = (next: () => number, n: number) => Int32Array.from({ length: n }, () => randint(next, 0, spec.vocabSize - 1));
  let cpu: NativeModel;
  let dev: NativeModel;
  const pair = enginePair(spec, name);
  const both = async () => void ({ cpu, dev } = await pair());

  // 2,500 tokens: two GPU prefill chunks (the mma.sync flash prefill at these head_dims), the last partial.
  it('matches the CPU engine over chunked prefills, then dense decode steps', async () => {
    await both();
    const next = rng(20261222);
    const prompt = tokens(next, 2500);
    const fed = tokens(next, 24);
    const [a, b] = [cpu.createSequence(opts('dense')), dev.createSequence(opts('dense'))];
    const pre = relDiff(await b.prefill(prompt, true), await a.prefill(prompt, true));
    observed(name, 'prefill', pre);
    expect(pre).toBeLessThan(DERIVED_FP16);
    let worst = 0;
    for (const t of fed) worst = Math.max(worst, relDiff(await b.feed(Int32Array.of(t)), await a.feed(Int32Array.of(t))));
    observed(name, 'dense', worst);
    expect(worst).toBeLessThan(DERIVED_FP16);
    expect(b.stats().kvBytesRead * 2).toBe(a.stats().kvBytesRead); // the same tokens, fp16 vs fp32
    a.close();
    b.close();
  });

  // Quest governing the last layer (Quest keeps no state, so a list parted at a near tie touches
  // that step's logits only): where both backends read the same pages the logits agree; where
  // they part, the CPU's margin at the cut was within what the GPU's fp16 scores can move (4u
  // for the rounding of query and bounds, plus twice the bound for the drift of the layer's
  // input, as test/gpu-model.test.ts derives it). Random weights make attention nearly flat, so
  // near ties happen; at least a third of the steps must be compared.
  it('matches the CPU engine under Quest (budget 64), reading the same pages', async () => {
    await both();
    const next = rng(20261223);
    const context = tokens(next, 300);
    const fed = tokens(next, 32);
    const o = { ...opts('quest', 64, spec.numLayers - 1), recordSelections: true };
    const [a, b] = [cpu.createSequence(o), dev.createSequence(o)];
    await a.prefill(context);
    await b.prefill(context);
    const diffs: number[] = [];
    for (const t of fed) diffs.push(relDiff(await b.feed(Int32Array.of(t)), await a.feed(Int32Array.of(t))));
    const [ra, rb] = [a.selections(), b.selections()];
    let compared = 0;
    let worst = 0;
    for (let s = 0; s < fed.length; s++) {
      const margins = partedMargins(ra[s], rb[s], 0);
      for (const m of margins) expect(m, `step ${s}: the GPU read other pages at a CPU margin of ${m}`).toBeLessThanOrEqual(nearTie(2 ** -11, DERIVED_FP16));
      if (margins.length) continue;
      compared++;
      worst = Math.max(worst, diffs[s]);
    }
    observed(name, `quest-b64 (${compared} of ${fed.length} steps compared)`, worst);
    expect(worst).toBeLessThan(DERIVED_FP16);
    expect(compared).toBeGreaterThanOrEqual(fed.length / 3);
    expect(b.stats().tokensRead).toBe(a.stats().tokensRead);
    a.close();
    b.close();
  });
});
