// The GPU attention kernels against the CPU backend, on fresh random fp16 inputs each run.
// They run where a GPU is; elsewhere they are skipped, and say so.
import { describe, expect, it } from 'vitest';
import { native } from '../src/engine/index.js';
import { checkAttention } from '../src/run/attention-check.js';

const cuda = native().backendInfo().cuda;
const gpu = cuda.compiled && cuda.devices > 0;
if (!gpu) console.log(`GPU tests skipped: ${cuda.error || 'no CUDA device'}`);

describe.skipIf(!gpu)('CUDA attention kernels vs the CPU backend', () => {
  it('append, dense, Quest, token-list and prefill attention and the selection steps agree', async () => {
    const cases = await checkAttention();
    expect(cases.flatMap((c) => c.failures.map((f) => `${JSON.stringify(c.shape)} L${c.length} B${c.budget} seed ${c.seed}: ${f}`))).toEqual([]);
  });
});
