// Budgets as a fraction of each sample's prompt: parsing, resolution, the records and the refusals.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBudget, resolveBudget } from '../src/run/budgets.js';
import { quest, tempDirs } from './helpers.js';

const temp = tempDirs();

describe('fractional budgets', () => {
  it('parses token counts and fractions, and rounds a fraction of the prompt down', () => {
    expect(parseBudget('--budgets', '64')).toBe(64);
    expect(parseBudget('--budgets', '.05c')).toBe('0.05c');
    expect(resolveBudget('0.05c', 1000)).toBe(50);
    expect(resolveBudget('0.1c', 249)).toBe(24);
    expect(resolveBudget(64, 249)).toBe(64);
    expect(() => parseBudget('--budgets', '0c')).toThrow('--budgets: "0c" is not a positive integer or a fraction');
  });

  it('runs each sample at its own resolved budget and records it beside the spec', async () => {
    const out = temp();
    const r = await quest(['eval', '--lengths', '256', '--samples', '2', '--policies', 'dense,h2o', '--budgets', '0.25c,64', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const recs = readFileSync(path.join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const frac = recs.filter((x) => x.budget === '0.25c');
    expect(frac).toHaveLength(2);
    for (const x of frac) {
      expect(x.budgetTokens).toBe(Math.floor(0.25 * (x.contextTokens + x.questionTokens)));
      // H2O reads exactly its budget once the cache holds more than it.
      expect(x.stats.tokensPerStep).toBe(x.budgetTokens);
    }
    expect(recs.find((x) => x.budget === 64).budgetTokens).toBe(64);
    expect(recs.find((x) => x.policy === 'dense').budgetTokens).toBeNull();
    const rows = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).rows;
    expect(rows.map((x: { policy: string; budget: unknown }) => `${x.policy}@${x.budget ?? 'all'}`)).toEqual(['dense@all', 'h2o@0.25c', 'h2o@64']);
  });

  it('refuses a fraction that resolves below a page, naming the sample, before any unit runs', async () => {
    const out = temp();
    const r = await quest(['eval', '--lengths', '256', '--samples', '1', '--policies', 'quest', '--budgets', '0.01c', '--output-path', out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(/^quest: --budgets 0\.01c: passkey-L256-\S+'s prompt of \d+ tokens gives \d, which is smaller than a page \(--page-size 16\)$/);
  });
});
