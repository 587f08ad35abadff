// One prefill shared by every cell of a sample, and batched decoding, on the GPU (issue #20):
// each cell must do what it does alone on the same device with the same kernels, and the
// cells must hold the context's KV pages once. Skipped, with a message, where no GPU is
// (QUEST_REQUIRE_GPU=1: they fail).
//
// Exact, not within a tolerance: a cell of a shared prefill runs the alone cell's kernels on
// the same values (its prefill is the same chunks, its decode attention the same launches over
// the same logical pages), and a batch's linear layers run the one-row GEMV's arithmetic for
// each of its rows (kernels/linear.cu: only the weight loads are shared), so its logits are
// the same bits. One exception could part them:
// H2O's, TOVA's and SnapKV's prefill column sums add a KV head's query heads with float
// atomics, whose order is not fixed; a top-k near tie in the last bit could then fall apart
// differently in two runs of the same cell. A failure of those three alone, with every other
// policy exact, points there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, native, type NativeModel, type NativeSequence, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { policyNames } from '../src/run/policies.js';
import { randint, rng } from '../src/tasks/rng.js';
import { defaultModel, gpuTests, quest, recordsWithoutTimings as records, setEnv, shareCell, tempDirs } from './helpers.js';

const gpu = gpuTests('GPU shared-prefill tests');
const tempDir = tempDirs();

const folder = openModelFolder(defaultModel);
const { numLayers: layers, numKvHeads: kvHeads, headDim } = folder.spec;
const next = rng(20261206);
const random = (n: number) => Int32Array.from({ length: n }, () => randint(next, 0, folder.spec.vocabSize - 1));
// 1003 context tokens: 62 full pages of 16 and a partial one, which the cells share until each writes it.
const PAGE = 16;
const context = random(1003);
const question = random(9);
// A longer prompt for batches of unrelated sequences: up to three chunks of 64 Quest pages.
const longer = random(3000);
const noStop = new Int32Array(0);
// Two budgets below the context, where every sparse policy selects.
const BUDGETS = [64, 256];
const cell = (policy: string, budget: number) => shareCell(policy, budget, PAGE);
const name = (o: NativeSequenceOptions) => `${o.policy}@${o.budget}`;

/** What a sequence did, all but the timings. */
function counts(seq: NativeSequence) {
  const { prefillMs: _p, decodeMs: _d, selectMs: _s, issueMs: _i, ...rest } = seq.stats();
  return rest;
}

let loaded: NativeModel | undefined;
const getModel = async () => (loaded ??= await loadModel(folder.spec, defaultModel, 'cuda'));

/** Every cell of a shared prefill (each policy at `budgets`) decodes exactly as the same cell alone. */
async function sharedAsAlone(budgets: number[], denseLayers: number) {
  const model = await getModel();
  expect(model.backend).toBe('cuda');
  // Quest by query head too: on Hopper its lists of one query head take the fused step, which
  // runs on the cell's own stream while the other Quest cells share one launch a kind.
  const opts = [
    ...policyNames().flatMap((p) => (p === 'dense' ? [cell(p, 0)] : budgets.map((b) => cell(p, b)))),
    { ...cell('quest', budgets[0]), questGqa: 'per-query-head' as const },
  ].map((o) => ({ ...o, denseLayers }));
  const shared = await model.prefillShared(context, opts);
  await model.feedBatch(shared, question);
  // One more token fed to each, concurrently (the family's pages are one pool), for its logits.
  const last = Int32Array.of(question[0]);
  const sharedLogits = await Promise.all(shared.map((s) => s.feed(last)));
  const sharedTokens = await model.generateBatch(shared, 16, noStop);
  for (const [i, o] of opts.entries()) {
    const alone = model.createSequence(o);
    await alone.prefill(context);
    await alone.feed(question);
    const logits = await alone.feed(last);
    const tokens = await alone.generate(16, noStop);
    expect(shared[i].selections(), name(o)).toEqual(alone.selections());
    expect(counts(shared[i]), name(o)).toEqual(counts(alone));
    expect(Array.from(sharedLogits[i]), name(o)).toEqual(Array.from(logits));
    expect(Array.from(sharedTokens[i]), name(o)).toEqual(Array.from(tokens));
    alone.close();
  }
  // The budgets made the sparse policies read less than dense.
  const dense = counts(shared[0]);
  for (const [i, o] of opts.entries())
    if (o.policy !== 'dense' && o.budget === budgets[0]) expect(counts(shared[i]).tokensRead, name(o)).toBeLessThan(dense.tokensRead);
  for (const s of shared) s.close();
}

// QUEST_DECODE_LANES, read as each sequence is made: unset, the dense and Quest lanes of a
// decode batch share one launch a kind; 0, each lane attends on its own stream. Either way
// every cell keeps its bits.
for (const lanes of [undefined, '0']) {
  describe.skipIf(!gpu)(`shared prefill and batched decode (GPU), QUEST_DECODE_LANES=${lanes ?? 'unset'}`, () => {
    let restore = () => {};
    beforeAll(() => {
      restore = setEnv('QUEST_DECODE_LANES', lanes);
    });
    afterAll(() => restore());

    it('every cell of a shared prefill decodes exactly as the same cell alone, under every policy at two budgets', async () => {
      // The engine reads the setting as this describe sets it.
      expect(native().backendInfo().cuda.decodeBatch).toMatch(lanes ? /each sequence's attention on its own stream/ : /in one launch a kind a layer/);
      await sharedAsAlone(BUDGETS, 0);
    });

    // 20 cells, more rows than one launch of the decode step's kernels takes (kLanes), each reading its first two layers whole.
    it('cells that read their first layers whole, more of them than one launch takes, decode exactly as each alone', async () => {
      await sharedAsAlone([64, 128, 256], 2);
    });

    // The last four record nothing, so that no copy to the host orders the streams for them; the
    // per-query-head Quest ones read 160 and 144 pages a list, more than the fused step takes, so
    // that with the lanes joined two lanes of one query head a list share a launch.
    it('a batch of unrelated sequences (other lengths, other families, more rows than one GEMV launch takes) decodes as each alone', async () => {
      const model = await getModel();
      type Case = [number, string, Partial<NativeSequenceOptions>?];
      const quiet = { recordSelections: false };
      const make = async ([n, policy, extra]: Case) => {
        const s = model.createSequence({ ...cell(policy, 64), ...extra });
        await s.prefill(longer.subarray(0, n));
        return s;
      };
      const cases: Case[] = [
        [400, 'quest'], [517, 'h2o'], [640, 'dense'], [703, 'streaming'], [1003, 'tova'], [1003, 'quest'],
        [2500, 'quest', quiet], [1900, 'dense', quiet],
        [3000, 'quest', { ...quiet, budget: 2560, questGqa: 'per-query-head' }], [2800, 'quest', { ...quiet, budget: 2304, questGqa: 'per-query-head' }],
      ];
      const batch = await Promise.all(cases.map(make));
      const nll = await model.nllBatch(batch, question);
      const tokens = await model.generateBatch(batch, 8, noStop);
      for (const [i, c] of cases.entries()) {
        const [n, p] = c;
        const alone = await make(c);
        expect(Array.from(nll[i]), `${p}@${n}`).toEqual(Array.from(await alone.nll(question)));
        expect(Array.from(tokens[i]), `${p}@${n}`).toEqual(Array.from(await alone.generate(8, noStop)));
        expect(counts(batch[i]), `${p}@${n}`).toEqual(counts(alone));
        alone.close();
      }
      for (const s of batch) s.close();
    });
  });
}

describe.skipIf(!gpu)('shared prefill (GPU): memory and settings', () => {
  it("cells hold the context's pages once: each costs only its own pages and key bounds", async () => {
    const model = await getModel();
    const K = 4;
    const seqs = await model.prefillShared(context, Array.from({ length: K }, (_, i) => cell(i % 2 ? 'quest' : 'h2o', 64 * (i + 1))));
    const held = (s: NativeSequence) => s.cacheStats()!;
    const total = () => seqs.reduce((n, s) => n + held(s).ownPages, 0);
    // Before decoding, every page of the context (its partial one included) is held in common;
    // a cell's own pages are the room it keeps for decoding.
    const contextPages = Math.ceil(context.length / PAGE);
    for (const s of seqs) expect(held(s).pages - held(s).ownPages).toBe(contextPages);
    expect(held(seqs[0]).familyPages).toBe(contextPages + total());
    // After a step the partial page is every cell's own: a copy, or for the last to write it the
    // original, which no other cell holds by then.
    await model.feedBatch(seqs, question.subarray(0, 1));
    const fullPages = Math.floor(context.length / PAGE);
    for (const s of seqs) expect(held(s).pages - held(s).ownPages).toBe(fullPages);
    expect(held(seqs[0]).familyPages).toBe(fullPages + total());
    expect(held(seqs[0]).familyPages).toBeLessThan(K * held(seqs[0]).pages);
    // A page: K and V of every layer, kGpuPage slots of 16-bit values. The key bounds, apart,
    // are each Quest cell's own (and the prefill's, which made them), none for the others: min
    // and max per layer, KV head, channel and Quest page of its capacity (in chunks of 64 pages).
    expect(held(seqs[0]).pageBytes).toBe(2 * layers * kvHeads * PAGE * headDim * 2);
    const questPages = Math.ceil(held(seqs[0]).pages / 64) * 64; // Quest's page is the storage page here
    const bounds = 2 * layers * questPages * kvHeads * headDim * 2;
    for (const [i, s] of seqs.entries()) expect(held(s).boundBytes, `cell ${i}`).toBe(i === 0 || i % 2 ? bounds : 0);
    // Closing cells frees their own pages; the shared ones stay while a cell holds them.
    for (const s of seqs.slice(1)) s.close();
    expect(held(seqs[0])).toMatchObject({ ownPages: held(seqs[0]).pages, familyPages: held(seqs[0]).pages });
    seqs[0].close();
  });

  it('refuses a QUEST_DECODE_LANES it does not take, by name, when a sequence is made', async () => {
    const model = await getModel();
    const restore = setEnv('QUEST_DECODE_LANES', 'yes');
    try {
      expect(() => model.createSequence(cell('quest', 64))).toThrow(/QUEST_DECODE_LANES=yes: expected 0 or 1/);
    } finally {
      restore();
    }
  });
});


describe.skipIf(!gpu)('quest eval --device cuda: shared cells', () => {
  it('gives the records of one cell at a time on the shipped model', async () => {
    const run = async (cells: string) => {
      const dir = tempDir();
      const r = await quest(['eval', '--device', 'cuda', '--tasks', 'passkey,perplexity', '--lengths', '1024', '--depths', '50', '--samples', '1',
        '--policies', policyNames().join(','), '--budgets', '64,256', '--cells', cells, '--output-path', dir]);
      expect(r.exitCode, r.stderr).toBe(0);
      return dir;
    };
    const [single, shared] = [await run('single'), await run('shared')];
    expect(records(shared)).toHaveLength(2 * (1 + 2 * (policyNames().length - 1)));
    expect(records(shared)).toEqual(records(single));
  });
});
