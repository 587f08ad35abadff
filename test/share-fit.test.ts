// quest eval --cells shared on a device that cannot hold all of a sample's cells at once: the
// engine refuses such a shared prefill up front, saying how many tokens would fit (the GPU's
// check_fits); eval then splits the cells into smaller shared prefills, with a line saying so,
// and every record is still the record of that cell run alone. The device here is the CPU
// engine behind a stand-in prefillShared that refuses more than three cells, in the engine's words.
import { describe, expect, it, vi } from 'vitest';
import type { NativeModel } from '../src/engine/index.js';
import { evalConfig } from '../src/config/index.js';
import { runEval } from '../src/run/eval.js';
import { recordsWithoutTimings as records, tempDirs } from './helpers.js';

const HOLDS = 3;
const prefills: number[] = [];
// The prefill (counted from 1, among those that fit) at which the device fails outright; 0: never.
let failAt = 0;

vi.mock('../src/engine/index.js', async (importOriginal) => {
  const engine = await importOriginal<typeof import('../src/engine/index.js')>();
  const loadModel: typeof engine.loadModel = async (...args) => {
    const model = await engine.loadModel(...args);
    return new Proxy(model, {
      get(target, key) {
        if (key === 'prefillShared')
          return async (context: Int32Array, cells: Parameters<NativeModel['prefillShared']>[1]) => {
            if (cells.length > HOLDS) throw new Error(`a KV cache of ${context.length} tokens needs 2.0 GiB of GPU memory and 1.0 GiB is free: about ${context.length >> 1} tokens would fit`);
            if (prefills.length + 1 === failAt) throw new Error('the device failed');
            prefills.push(cells.length);
            return target.prefillShared(context, cells);
          };
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  return { ...engine, loadModel };
});

const tempDir = tempDirs();

// Passkey at 256 tokens, 7 cells a sample (dense + 3 policies x 2 budgets).
const config = (cells: 'shared' | 'single', samples: number, outputPath: string) =>
  evalConfig(undefined, {
    tasks: ['passkey'],
    lengths: [256],
    depths: [50],
    samples,
    policies: ['dense', 'quest', 'h2o', 'streaming'],
    budgets: [64, 128],
    device: 'cpu',
    cells,
    outputPath,
  });

async function run(cells: 'shared' | 'single') {
  const dir = tempDir();
  const notes: string[] = [];
  await runEval(config(cells, 2, dir), [], { start: () => {}, unit: () => {}, note: (m) => notes.push(m), stop: () => {} });
  return { dir, notes };
}

describe('quest eval --cells shared, more cells than the device holds', () => {
  it('splits them into smaller shared prefills, says so, and gives the records of one cell at a time', async () => {
    prefills.length = 0;
    failAt = 0;
    const shared = await run('shared');
    // The first sample's 7 cells (dense + 3 policies x 2 budgets): refused, then 4 (refused: 2 +
    // 2) and 3; the second sample's start from the 3 that ran together, and are not refused.
    expect(prefills).toEqual([2, 2, 3, 3, 3, 1]);
    expect(shared.notes.filter((n) => n.includes('do not fit on the device together'))).toHaveLength(2);
    expect(shared.notes[0]).toMatch(/--cells shared: the 7 cells of sample \S+ do not fit .*tokens would fit\): they run as two prefills of 4 and 3/);
    const single = await run('single');
    expect(records(shared.dir)).toHaveLength(14);
    expect(records(shared.dir)).toEqual(records(single.dir));
  });

  it('keeps the records of the parts that ran when a later part fails', async () => {
    prefills.length = 0;
    failAt = 3;
    const dir = tempDir();
    // 7 cells: refused, then 4 (refused: 2 + 2, both run) and 3, whose prefill fails.
    await expect(runEval(config('shared', 1, dir), [], { start: () => {}, unit: () => {}, note: () => {}, stop: () => {} })).rejects.toThrow('the device failed');
    expect(prefills).toEqual([2, 2]);
    expect(records(dir)).toHaveLength(4);
  });
});
