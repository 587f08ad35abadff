// The GPU attention kernels against the CPU backend, on fresh random fp16 inputs each run.
// They run where a GPU is; elsewhere they are skipped, and say so (QUEST_REQUIRE_GPU=1: they fail).
import { describe, expect, it } from 'vitest';
import { checkAttention, type ParityCase } from '../src/run/attention-check.js';
import { gpuTests, hopper } from './helpers.js';

const gpu = gpuTests('GPU kernel tests');
if (gpu && !hopper) console.log('the four-block fused Quest step check skipped: the GPU is not a Hopper (no thread-block clusters)');

/** Each failing comparison, with the case that failed it. */
const failures = (cases: ParityCase[]) =>
  cases.flatMap((c) => c.failures.map((f) => `${JSON.stringify(c.shape)} L${c.length} B${c.budget} seed ${c.seed}: ${f}`));

describe.skipIf(!gpu)('CUDA attention kernels vs the CPU backend', () => {
  it('append, dense, Quest, token-list and prefill attention and the selection steps agree', async () => {
    expect(failures(await checkAttention())).toEqual([]);
  });

  // The MHA shapes' lists are one query head each, so on Hopper Quest's whole step is the fused
  // kernel; with QUEST_STEP_BLOCKS=4 (read as each check makes its plan) its 4-block clusters.
  it.skipIf(!hopper)('the fused Quest step in clusters of four blocks (QUEST_STEP_BLOCKS=4) agrees as well', async () => {
    const before = process.env.QUEST_STEP_BLOCKS;
    process.env.QUEST_STEP_BLOCKS = '4';
    try {
      expect(failures(await checkAttention())).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.QUEST_STEP_BLOCKS;
      else process.env.QUEST_STEP_BLOCKS = before;
    }
  });
});
