// The benchmarks of batched decoding and of a whole sweep, on the CPU with the tiny preset:
// what they count (timings aside) and that their results are read by quest check and results.
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quest, tempDirs } from './helpers.js';

const tempDir = tempDirs();
const rows = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')).rows;

describe('bench-latency --batch and bench-eval', () => {
  it('bench-latency --batch gives a row per batch size, reading each sequence’s KV once per step', async () => {
    const dir = tempDir();
    const r = await quest(['bench-latency', '--model', 'tiny', '--device', 'cpu', '--lengths', '256', '--policies', 'dense,quest', '--budgets', '64',
      '--batch', '1,3', '--repeats', '1', '--decode-steps', '4', '--output-path', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const got = rows(dir);
    expect(got.map((x: { policy: string; batch: number }) => [x.policy, x.batch])).toEqual([['dense', 1], ['dense', 3], ['quest', 1], ['quest', 3]]);
    for (const [one, three] of [[got[0], got[1]], [got[2], got[3]]]) {
      expect(three.tokensPerStep).toBe(one.tokensPerStep);
      expect(three.kvKiBPerStep).toBeCloseTo(3 * one.kvKiBPerStep, 9);
      expect(three.batchAsked).toBe(3);
      // The host's issue time is a GPU statistic: the CPU runs the step itself.
      expect(one.issueMsPerStep).toBeNull();
    }
    // Quest at budget 64 reads less than dense at the same batch.
    expect(got[3].kvKiBPerStep).toBeLessThan(got[1].kvKiBPerStep);
    const check = await quest(['check', '--baseline', dir, '--current', dir]);
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  });

  it('bench-eval times a sweep shared and one cell at a time, and its results are indexed and checked', async () => {
    const dir = path.join(tempDir(), 'sweep');
    const r = await quest(['bench-eval', '--model', 'tiny', '--device', 'cpu', '--lengths', '256', '--policies', 'dense,quest,h2o', '--budgets', '32,64',
      '--decode-steps', '4', '--repeats', '1', '--output-path', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [row] = rows(dir);
    expect(row).toMatchObject({ model: 'tiny', backend: 'cpu', length: 256, cells: 5, generated: 4 });
    for (const k of ['sharedS', 'singleS', 'denseS']) expect(row[k]).toBeGreaterThan(0);
    expect(row.singleOverShared).toBeCloseTo(row.singleS / row.sharedS, 9);
    expect(row.sharedOverDense).toBeCloseTo(row.sharedS / row.denseS, 9);
    for (const k of ['sharedPrefillS', 'sharedDecodeS', 'densePrefillS', 'denseDecodeS']) expect(row[k]).toBeGreaterThan(0);
    const check = await quest(['check', '--baseline', dir, '--current', dir]);
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    // A sweep without a dense cell has no dense time to compare with.
    const noDense = path.join(tempDir(), 'no-dense');
    const r2 = await quest(['bench-eval', '--model', 'tiny', '--device', 'cpu', '--lengths', '256', '--policies', 'quest,h2o', '--budgets', '32',
      '--decode-steps', '2', '--repeats', '1', '--output-path', noDense]);
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(rows(noDense)[0]).toMatchObject({ cells: 2, denseS: null, sharedOverDense: null, densePrefillS: null, denseDecodeS: null });
    const published = tempDir();
    cpSync(dir, path.join(published, 'sweep'), { recursive: true });
    const index = await quest(['results', '--from', published]);
    expect(index.exitCode, index.stderr).toBe(0);
    expect(readFileSync(path.join(published, 'RESULTS.md'), 'utf8')).toContain('`quest bench-eval`');
  });
});
