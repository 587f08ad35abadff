// Policies over KV made during a long generation on the shipped model: the cache grows to
// several times the prompt, and each policy's recorded selections keep its rule over the
// tokens decode made (the rules' choices against brute-force references are policies.test.ts's,
// through the probe, whose decode steps also outgrow the prompt several pages over).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type NativeModel, type NativeSequenceOptions, type NativeStepSelection } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { defaultModel, repo } from './helpers.js';

const folder = openModelFolder(defaultModel);
const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);
const PROMPT = 64;
const NEW = 320;
const B = 64;
const P = 16;

let model: NativeModel;
async function generate(opts: Partial<NativeSequenceOptions>): Promise<NativeStepSelection[]> {
  model ??= await loadModel(folder.spec, defaultModel);
  const tok = loadTokenizer(defaultModel);
  const ids = tok.encode(readFileSync(path.join(repo, 'datasets', 'text', 'kjv-heldout.txt'), 'utf8').slice(0, 2000), true).slice(0, PROMPT);
  expect(ids).toHaveLength(PROMPT);
  const seq = model.createSequence({ policy: 'dense', budget: B, pageSize: P, denseLayers: 2, recordSelections: true, ...opts });
  await seq.prefill(Int32Array.from(ids));
  // No stop token: the whole length is generated.
  const out = await seq.generate(NEW, new Int32Array());
  expect(out).toHaveLength(NEW);
  const steps = seq.selections();
  seq.close();
  // generate feeds every token but the last.
  expect(steps).toHaveLength(NEW - 1);
  return steps;
}

/** Each governed layer's KV head lists at each step, with the step's position. */
const lists = (steps: NativeStepSelection[]) => steps.flatMap((st, s) => st.lists.flatMap((layer, l) => layer.map((list, g) => ({ s, l, g, pos: PROMPT + s, list: Array.from(list) }))));

describe('policies over a cache that decode grows to six times the prompt', () => {
  it('Quest scores the pages decode completes like the prompt pages, and takes them', async () => {
    const steps = await generate({ policy: 'quest' });
    let decodePages = 0;
    for (const { pos, list } of lists(steps)) {
      const pages = [...new Set(list.map((t) => Math.floor(t / P)))];
      expect(pages).toHaveLength(B / P);
      expect(pages.at(-1)).toBe(Math.floor(pos / P));
      decodePages += pages.slice(0, -1).filter((p) => p >= PROMPT / P).length;
    }
    expect(decodePages).toBeGreaterThan(0);
  });

  it('H2O keeps evicting: B tokens, the newest B/2 among them, an evicted token never back', async () => {
    const steps = await generate({ policy: 'h2o' });
    const evicted = new Map<string, Set<number>>();
    const last = new Map<string, number[]>();
    for (const { l, g, pos, list } of lists(steps)) {
      const k = `${l}/${g}`;
      const gone = evicted.get(k) ?? new Set<number>();
      expect(list).toHaveLength(B);
      expect(list.slice(B / 2)).toEqual(range(pos + 1 - B / 2, pos + 1));
      expect(list.some((t) => gone.has(t))).toBe(false);
      for (const t of last.get(k) ?? []) if (!list.includes(t)) gone.add(t);
      evicted.set(k, gone);
      last.set(k, list);
    }
  });

  it('TOVA keeps evicting: each step reads the last one\'s tokens but one, and the new token', async () => {
    const steps = await generate({ policy: 'tova' });
    const prev = new Map<string, number[]>();
    for (const { l, g, pos, list } of lists(steps)) {
      expect(list).toHaveLength(B);
      expect(list.at(-1)).toBe(pos);
      const before = prev.get(`${l}/${g}`);
      if (before) expect(list.slice(0, -1).every((t) => before.includes(t))).toBe(true);
      prev.set(`${l}/${g}`, list);
    }
  });

  it('StreamingLLM slides its window over the generated tokens', async () => {
    const steps = await generate({ policy: 'streaming', streamingSinks: 4 });
    for (const { pos, list } of lists(steps)) expect(list).toEqual([...range(0, 4), ...range(pos + 1 - (B - 4), pos + 1)]);
  });

  it('SnapKV (no interval) keeps its prefill choice and reads every generated token', async () => {
    const steps = await generate({ policy: 'snapkv', budget: 48, snapkvWindow: 16 });
    const kept = new Map<string, number[]>();
    for (const { l, g, pos, list } of lists(steps)) {
      const k = `${l}/${g}`;
      if (!kept.has(k)) kept.set(k, list.filter((t) => t < PROMPT));
      expect(list).toEqual([...kept.get(k)!, ...range(PROMPT, pos + 1)]);
    }
  });

  it('SnapKV with --snapkv-interval re-selects as it goes: a step reads at most B + interval', async () => {
    const N = 32;
    const steps = await generate({ policy: 'snapkv', budget: 48, snapkvWindow: 16, snapkvInterval: N });
    for (const { s, list } of lists(steps)) {
      expect(list.length).toBeLessThanOrEqual(48 + N);
      // Right after a re-selection the step reads the B kept and itself.
      if (s > 0 && s % N === 0) expect(list).toHaveLength(48 + 1);
    }
  });
});
