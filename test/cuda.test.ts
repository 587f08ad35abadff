// The GPU attention kernels against the CPU backend, on fresh random fp16 inputs each run.
// They run where a GPU is; elsewhere they are skipped, and say so (QUEST_REQUIRE_GPU=1: they fail).
import { describe, expect, it } from 'vitest';
import { checkAttention } from '../src/run/attention-check.js';
import { gpuTests } from './helpers.js';

const gpu = gpuTests('GPU kernel tests');

describe.skipIf(!gpu)('CUDA attention kernels vs the CPU backend', () => {
  it('append, dense, Quest, token-list and prefill attention and the selection steps agree', async () => {
    const cases = await checkAttention();
    expect(cases.flatMap((c) => c.failures.map((f) => `${JSON.stringify(c.shape)} L${c.length} B${c.budget} seed ${c.seed}: ${f}`))).toEqual([]);
  });
});
