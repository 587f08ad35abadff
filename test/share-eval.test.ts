// quest eval's shared path (one prefill per sample, its cells decoded as a batch: the
// default on the CPU) against one cell at a time (--cells single): the same records, byte
// for byte but for the timings, and the same tables, under every policy, for generated
// answers (passkey) and per-token NLL (perplexity), in one process and over workers.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyNames } from '../src/run/policies.js';
import { quest, recordsWithoutTimings as records, tempDirs } from './helpers.js';

const tempDir = tempDirs();
const args = ['eval', '--device', 'cpu', '--tasks', 'passkey,perplexity', '--lengths', '256', '--depths', '50', '--samples', '1',
  '--policies', policyNames().join(','), '--budgets', '64,128'];

const results = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'));
/** The table without its timing columns. */
const table = (dir: string) =>
  results(dir).rows.map(({ selectMsPerSample: _s, prefillMsPerSample: _p, decodeMsPerStep: _d, ...rest }: Record<string, unknown>) => rest);

async function run(extra: string[]): Promise<string> {
  const dir = tempDir();
  const r = await quest([...args, ...extra, '--output-path', dir]);
  expect(r.exitCode, r.stderr).toBe(0);
  return dir;
}

describe('quest eval: shared prefill and batched cells', () => {
  it('gives the records and tables of one cell at a time, in the same order, in one process and over two workers', async () => {
    const [single, shared, workers] = [await run(['--cells', 'single']), await run([]), await run(['--workers', '2'])];
    expect(results(shared).config.cells).toBe('shared');
    expect(results(single).config.cells).toBe('single');
    // 2 samples (a passkey prompt, a perplexity window) x (dense + 6 policies x 2 budgets).
    expect(records(shared)).toHaveLength(2 * (1 + 2 * (policyNames().length - 1)));
    expect(records(shared)).toEqual(records(single));
    expect(table(shared)).toEqual(table(single));
    // Workers take a sample's cells as one job; records come back as jobs end.
    expect([...records(workers)].sort()).toEqual([...records(single)].sort());
    expect(table(workers)).toEqual(table(single));
  });
});
