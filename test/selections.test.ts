// A sequence created with recordSelections keeps what each decode step read in every layer the
// policy governs, and the CPU policy's margin at each cut (the margins' values are checked
// against float64 references in policies.test.ts, through the probe).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type NativeModel, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { fixtures, tokensServed } from './helpers.js';

const dir = path.join(fixtures, 'llama');
const spec = openModelFolder(dir).spec;
const prompt: number[] = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')).prompt_ids;
const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);
const PROMPT = 200;
const STEPS = 40;
const group = spec.numHeads / spec.numKvHeads;

let model: NativeModel;
async function run(opts: Partial<NativeSequenceOptions>) {
  model ??= await loadModel(spec, dir);
  const seq = model.createSequence({ policy: 'dense', budget: 0, pageSize: 16, denseLayers: 1, recordSelections: true, ...opts });
  await seq.prefill(Int32Array.from(prompt.slice(0, PROMPT)));
  const logits = await seq.feed(Int32Array.from(prompt.slice(PROMPT, PROMPT + STEPS)));
  const out = { logits, stats: seq.stats(), steps: seq.selections() };
  seq.close();
  return out;
}

describe('recorded selections', () => {
  it('are off by default, and recording changes nothing the sequence computes', async () => {
    model ??= await loadModel(spec, dir);
    const seq = model.createSequence({ policy: 'h2o', budget: 64, pageSize: 16, denseLayers: 1 });
    await seq.prefill(Int32Array.from(prompt.slice(0, PROMPT)));
    const logits = await seq.feed(Int32Array.from(prompt.slice(PROMPT, PROMPT + STEPS)));
    expect(() => seq.selections()).toThrow(/does not record its selections.*recordSelections/);
    const recorded = await run({ policy: 'h2o', budget: 64 });
    expect(Array.from(recorded.logits)).toEqual(Array.from(logits));
    expect(recorded.stats.tokensRead).toBe(seq.stats().tokensRead);
    seq.close();
  });

  it('hold, for streaming, the sinks and the recent window in each governed layer, with no cut', async () => {
    const B = 64;
    const { steps } = await run({ policy: 'streaming', budget: B, streamingSinks: 4 });
    expect(steps).toHaveLength(STEPS);
    steps.forEach((st, s) => {
      const pos = PROMPT + s;
      expect(st.lists).toHaveLength(spec.numLayers - 1); // layer 0 is dense
      for (const [l, lists] of st.lists.entries()) {
        expect(lists).toHaveLength(spec.numKvHeads);
        for (const list of lists) expect(Array.from(list)).toEqual([...range(0, 4), ...range(pos + 1 - (B - 4), pos + 1)]);
        expect(Array.from(st.margins[l])).toEqual(lists.map(() => Infinity));
      }
    });
  });

  it('hold every position, with no cut, where the budget covers the context', async () => {
    const { steps } = await run({ policy: 'quest', budget: 512 });
    steps.forEach((st, s) => {
      for (const lists of st.lists) for (const list of lists) expect(Array.from(list)).toEqual(range(0, PROMPT + s + 1));
      for (const m of st.margins) expect(Array.from(m).every((x) => x === Infinity)).toBe(true);
    });
  });

  it('hold, for Quest, whole pages plus the current one, each step a cut', async () => {
    const P = 16;
    const B = 64;
    const { steps } = await run({ policy: 'quest', budget: B, pageSize: P });
    steps.forEach((st, s) => {
      const pos = PROMPT + s;
      const current = Math.floor(pos / P);
      for (const [l, lists] of st.lists.entries())
        lists.forEach((list, g) => {
          const pages = [...new Set(Array.from(list, (t) => Math.floor(t / P)))];
          expect(pages).toHaveLength(B / P);
          expect(pages.at(-1)).toBe(current);
          expect(Array.from(list)).toEqual([...pages.slice(0, -1).flatMap((p) => range(p * P, p * P + P)), ...range(current * P, pos + 1)]);
          expect(st.margins[l][g]).toBeGreaterThanOrEqual(0);
          expect(st.margins[l][g]).toBeLessThan(Infinity);
        });
    });
  });

  it('hold, for SnapKV, the prompt tokens kept at the first step (its one cut) and every later token', async () => {
    const { steps } = await run({ policy: 'snapkv', budget: 64, snapkvWindow: 16 });
    steps.forEach((st, s) => {
      for (const [l, lists] of st.lists.entries())
        lists.forEach((list, g) => {
          const kept = Array.from(steps[0].lists[l][g]).filter((t) => t < PROMPT);
          expect(kept).toHaveLength(64);
          expect(kept.slice(-16)).toEqual(range(PROMPT - 16, PROMPT));
          expect(Array.from(list)).toEqual([...kept, ...range(PROMPT, PROMPT + s + 1)]);
          if (s === 0) expect(st.margins[l][g]).toBeLessThan(Infinity);
          else expect(st.margins[l][g]).toBe(Infinity);
        });
    });
  });

  it.each([
    ['dense', {}],
    ['streaming', { budget: 64 }],
    ['quest', { budget: 64 }],
    ['quest', { budget: 64, pageSize: 8, questGqa: 'per-query-head' }],
    ['h2o', { budget: 64 }],
    ['tova', { budget: 64 }],
    ['snapkv', { budget: 64 }],
    ['oracle-topk', { budget: 64 }],
  ] as const)('hold what the engine counts as read under %s %o', async (policy, extra) => {
    const { stats, steps } = await run({ policy, ...extra });
    expect(steps).toHaveLength(STEPS);
    expect(stats.policySamples).toBe(STEPS * (spec.numLayers - 1) * spec.numKvHeads);
    expect(tokensServed(steps, spec.numKvHeads, group)).toBe(stats.tokensRead);
    steps.forEach((st, s) => {
      for (const lists of st.lists) {
        expect([spec.numKvHeads, spec.numHeads]).toContain(lists.length);
        // Ascending positions of the cache as it stands at this step.
        for (const list of lists) expect(Array.from(list).every((t, i) => t >= 0 && t <= PROMPT + s && (i === 0 || t > list[i - 1]))).toBe(true);
      }
      for (const m of st.margins) expect(Array.from(m).every((x) => x >= 0)).toBe(true);
    });
  });
});
