// One prefill shared by every cell (policy x budget) of a sample, and batched decoding, on
// the CPU backend: each cell must do exactly what it does alone (same logits, tokens,
// selections and counts), and hold the context's KV pages once for all cells.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type NativeModel, type NativeSequence, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { policyNames } from '../src/run/policies.js';
import { fixtures, shareCell } from './helpers.js';

const dir = path.join(fixtures, 'llama');
const prompt: number[] = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')).prompt_ids;
let loaded: NativeModel | undefined;
const getModel = async () => (loaded ??= await loadModel(openModelFolder(dir).spec, dir));

// 203 context tokens: 12 full pages of 16 and a partial one, which the cells share until each writes it.
const PAGE = 16;
const context = Int32Array.from(prompt.slice(0, 203));
const question = Int32Array.from(prompt.slice(203, 208));
const noStop = new Int32Array(0);
// Budgets below the context (48, 96) and beyond it (256: every policy reads everything).
const BUDGETS = [48, 96, 256];
const cell = (policy: string, budget: number) => shareCell(policy, budget, PAGE);
const cells = () => policyNames().flatMap((p) => (p === 'dense' ? [cell(p, 0)] : BUDGETS.map((b) => cell(p, b))));
const name = (o: NativeSequenceOptions) => `${o.policy}@${o.budget}`;

/** What a sequence did, all but the timings. */
function counts(seq: NativeSequence) {
  const { prefillMs: _p, decodeMs: _d, selectMs: _s, issueMs: _i, ...rest } = seq.stats();
  return rest;
}

describe('shared prefill and batched decode (CPU)', () => {
  it('every cell of a shared prefill decodes exactly as the same cell alone, under every policy and budget', async () => {
    const model = await getModel();
    const opts = cells();
    const shared = await model.prefillShared(context, opts);
    await model.feedBatch(shared, question);
    // One more token fed to each alone, for its logits; then the rest generated as one batch.
    const sharedLogits = await Promise.all(shared.map((s) => s.feed(Int32Array.of(prompt[208]))));
    const sharedTokens = await model.generateBatch(shared, 12, noStop);
    for (const [i, o] of opts.entries()) {
      const alone = model.createSequence(o);
      await alone.prefill(context);
      await alone.feed(question);
      const logits = await alone.feed(Int32Array.of(prompt[208]));
      const tokens = await alone.generate(12, noStop);
      expect(Array.from(sharedLogits[i]), name(o)).toEqual(Array.from(logits));
      expect(Array.from(sharedTokens[i]), name(o)).toEqual(Array.from(tokens));
      expect(counts(shared[i]), name(o)).toEqual(counts(alone));
      expect(shared[i].selections(), name(o)).toEqual(alone.selections());
      alone.close();
    }
    // The budgets below the context made the sparse policies read less than dense.
    const dense = counts(shared[0]);
    expect(opts[0].policy).toBe('dense');
    for (const [i, o] of opts.entries())
      if (o.policy !== 'dense' && o.budget === 48) expect(counts(shared[i]).tokensRead, name(o)).toBeLessThan(dense.tokensRead);
    for (const s of shared) s.close();
  });

  it("cells hold the context's pages once: each costs only the pages it writes", async () => {
    const model = await getModel();
    const K = 5;
    const seqs = await model.prefillShared(context, Array.from({ length: K }, (_, i) => cell(i % 2 ? 'quest' : 'h2o', 48 + 16 * i)));
    const contextPages = Math.ceil(context.length / PAGE);
    for (const s of seqs) expect(s.cacheStats()).toMatchObject({ pages: contextPages, ownPages: 0, familyPages: contextPages });
    // After 25 more tokens each cell holds its copy of the partial page and the pages it grew.
    await model.feedBatch(seqs, Int32Array.from(prompt.slice(203, 228)));
    const fullPages = Math.floor(context.length / PAGE);
    const own = Math.ceil(228 / PAGE) - fullPages;
    for (const s of seqs) expect(s.cacheStats()).toMatchObject({ pages: Math.ceil(228 / PAGE), ownPages: own, familyPages: fullPages + K * own });
    expect(fullPages + K * own).toBeLessThan(K * Math.ceil(228 / PAGE));
    expect(seqs[0].cacheStats()!.pageBytes).toBe(2 * 2 * 2 * (PAGE * 64 + 64) * 4); // 2 layers x 2 KV heads x (K,V slots + bounds) of 64 fp32
    // Closing cells frees their own pages; the shared ones stay while a cell holds them.
    for (const s of seqs.slice(1)) s.close();
    expect(seqs[0].cacheStats()).toMatchObject({ ownPages: Math.ceil(228 / PAGE), familyPages: Math.ceil(228 / PAGE) });
    seqs[0].close();
  });

  it('a batch of unrelated sequences decodes as each alone (nll and generate)', async () => {
    const model = await getModel();
    const make = async (n: number) => {
      const s = model.createSequence(cell('quest', 48));
      await s.prefill(Int32Array.from(prompt.slice(0, n)));
      return s;
    };
    const lengths = [100, 151, 203];
    const batch = await Promise.all(lengths.map(make));
    const fed = Int32Array.from(prompt.slice(210, 230));
    const nll = await model.nllBatch(batch, fed);
    const tokens = await model.generateBatch(batch, 8, Int32Array.of(7));
    for (const [i, n] of lengths.entries()) {
      const alone = await make(n);
      expect(Array.from(nll[i])).toEqual(Array.from(await alone.nll(fed)));
      expect(Array.from(tokens[i])).toEqual(Array.from(await alone.generate(8, Int32Array.of(7))));
      expect(counts(batch[i])).toEqual(counts(alone));
    }
  });

  it('refuses cells that cannot share a prefill, and a sequence named twice in a batch', async () => {
    const model = await getModel();
    await expect(model.prefillShared(context, [cell('dense', 0), { ...cell('quest', 48), pageSize: 32 }])).rejects.toThrow('one page size');
    await expect(model.prefillShared(context, [cell('snapkv', 96), { ...cell('snapkv', 96), snapkvWindow: 16 }])).rejects.toThrow(
      'different observation windows',
    );
    const [a] = await model.prefillShared(context, [cell('dense', 0)]);
    expect(() => model.feedBatch([a, a], question)).toThrow('named twice');
    a.close();
    expect(() => model.feedBatch([a], question)).toThrow('closed');
  });
});
