/**
 * The GPU attention and selection kernels against the CPU backend, on fresh random fp16 inputs: the one
 * check `quest bench-attention --check` prints and test/cuda.test.ts asserts.
 */
import { native, type NativeAttentionParity } from '../engine/index.js';

export const PARITY_SHAPES = [
  { heads: 8, kvHeads: 2, headDim: 128 }, // GQA, groups of 4
  { heads: 4, kvHeads: 4, headDim: 128 }, // MHA
  { heads: 8, kvHeads: 1, headDim: 64 }, // one group of 8, head_dim 64
];
// A partial newest page, a few pages, a cache shorter than the budget, and more Quest pages
// (1,249 at page 16) than the fused Quest step's 16 blocks a list score in one chunk each.
export const PARITY_CASES = [
  { length: 1000, budget: 256 },
  { length: 333, budget: 64 },
  { length: 17, budget: 64 },
  { length: 20000, budget: 1024 },
];
// Both sides accumulate in fp32 over the same fp16 values; only the order of the sums
// differs, so errors stay near fp32 rounding of the largest value.
const REL = 1e-4;
// The flash prefill rounds its probabilities to fp16 (unit roundoff 2^-11) before P V; a
// few units of that, relative to the largest value.
const PREFILL_REL = 2 ** -8;

export interface ParityCase {
  shape: (typeof PARITY_SHAPES)[number];
  length: number;
  budget: number;
  seed: number;
  result: NativeAttentionParity;
  failures: string[];
}

export function parityFailures(r: NativeAttentionParity): string[] {
  const f: string[] = [];
  if (r.appendMinMaxMaxAbs !== 0) f.push(`page min/max differ by ${r.appendMinMaxMaxAbs}`);
  if (r.denseMaxAbs >= REL * Math.max(1, r.denseRefMax)) f.push(`dense attention off by ${r.denseMaxAbs}`);
  if (r.estimateMaxAbs >= REL * Math.max(1, r.estimateRefMax)) f.push(`Quest estimate off by ${r.estimateMaxAbs}`);
  if (r.topkMismatches !== 0) f.push(`${r.topkMismatches} Quest selections differ (top-k pages, or per-query-head union counts)`);
  if (r.sparseMaxAbs >= REL * Math.max(1, r.sparseRefMax)) f.push(`sparse attention off by ${r.sparseMaxAbs}`);
  if (r.tokenMaxAbs >= REL * Math.max(1, r.tokenRefMax)) f.push(`token-list attention off by ${r.tokenMaxAbs}`);
  if (r.probsMaxAbs >= REL * Math.max(1, r.probsRefMax)) f.push(`attention probabilities off by ${r.probsMaxAbs}`);
  if (r.selectionMismatches !== 0) f.push(`${r.selectionMismatches} entries of the selection steps differ`);
  if (r.prefillMaxAbs >= PREFILL_REL * Math.max(1, r.prefillRefMax)) f.push(`prefill attention off by ${r.prefillMaxAbs}`);
  if (r.colsumMaxAbs >= REL * Math.max(1, r.colsumRefMax)) f.push(`prefill column sums off by ${r.colsumMaxAbs}`);
  return f;
}

export async function checkAttention(): Promise<ParityCase[]> {
  const out: ParityCase[] = [];
  for (const shape of PARITY_SHAPES)
    for (const c of PARITY_CASES) {
      const seed = Math.floor(Math.random() * 2 ** 31);
      const result = await native().parityAttention({ ...shape, pageSize: 16, ...c, seed });
      out.push({ shape, ...c, seed, result, failures: parityFailures(result) });
    }
  return out;
}
