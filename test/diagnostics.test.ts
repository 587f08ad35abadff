// Attention diagnostics (--diagnostics): the engine's relative L2 error and recall of attention
// mass against a reference that computes dense and sparse attention itself, in float64, from
// the raw queries, keys and values and the positions the policy read; then at model level
// (dense and full budgets give 0 and 1, the shared batch gives what cells alone give) and
// end to end through quest eval (records, tables, timings).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseBackend, gpuRefusal, loadModel, native, type NativeModel, type NativeOneLayerInput, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import type { EvalRecord } from '../src/run/records.js';
import { fixtures, headProbabilities, quest, randomCase, tempDir, type LayerCase } from './helpers.js';

const TOL = 2e-5;

/** Softmax attention of query head h at position r over `over`, float64: probabilities and output. */
function headAttention(c: LayerCase, r: number, h: number, over: number[]): { p: Map<number, number>; o: Float64Array } {
  const { heads, kvHeads: kvh, headDim: d } = c;
  const g = Math.floor(h / (heads / kvh));
  const probs = headProbabilities(c, r, h, over);
  const o = new Float64Array(d);
  const p = new Map<number, number>();
  over.forEach((t, j) => {
    p.set(t, probs[j]);
    for (let i = 0; i < d; i++) o[i] += probs[j] * c.values[(t * kvh + g) * d + i];
  });
  return { p, o };
}

/** The reference diagnostics of KV head g at position r, given each query head's read list (empty: all). */
function reference(c: LayerCase, r: number, g: number, lists: Int32Array[]): { l2: number; recall: number } {
  const group = c.heads / c.kvHeads;
  const all = Array.from({ length: r + 1 }, (_, t) => t);
  let err = 0;
  let norm = 0;
  let mass = 0;
  for (let h = g * group; h < (g + 1) * group; h++) {
    const list = lists.length === c.heads ? lists[h] : lists[g];
    const read = list.length ? Array.from(list) : all;
    const dense = headAttention(c, r, h, all);
    const sparse = headAttention(c, r, h, read);
    for (let i = 0; i < c.headDim; i++) {
      err += (sparse.o[i] - dense.o[i]) ** 2;
      norm += dense.o[i] ** 2;
    }
    mass += read.reduce((a, t) => a + dense.p.get(t)!, 0);
  }
  return { l2: Math.sqrt(err / norm), recall: mass / group };
}

const runLayer = (c: LayerCase, opts: Partial<NativeSequenceOptions>) =>
  native().runOneLayer({ policy: 'dense', budget: 0, pageSize: 4, denseLayers: 0, diagnostics: true, ...opts, ...c } as NativeOneLayerInput);

describe('diagnostics of one layer against a reference from raw q, K, V', () => {
  it.each([
    ['quest', { questGqa: 'group' }],
    ['quest', { questGqa: 'per-query-head' }],
    ['h2o', {}],
    ['streaming', { streamingSinks: 4 }],
    ['tova', {}],
    ['snapkv', { snapkvWindow: 8 }],
    ['oracle-topk', {}],
  ] as const)('%s %o at a small budget', async (policy, extra) => {
    const c = randomCase(3, 45, 30);
    const out = await runLayer(c, { policy, budget: 16, ...extra });
    let below = 0;
    out.steps.forEach((st, s) => {
      const pos = c.promptLength + s;
      expect(st.l2).toHaveLength(c.kvHeads);
      expect(st.recall).toHaveLength(c.kvHeads);
      for (let g = 0; g < c.kvHeads; g++) {
        const ref = reference(c, pos, g, st.selection);
        expect(Math.abs(st.l2![g] - ref.l2)).toBeLessThan(TOL);
        expect(Math.abs(st.recall![g] - ref.recall)).toBeLessThan(TOL);
        if (ref.recall < 0.999) below++;
      }
    });
    // A budget of 16 out of 45-75 positions misses attention mass somewhere.
    expect(below).toBeGreaterThan(0);
  });

  it.each(['dense', 'quest', 'h2o', 'streaming', 'snapkv'])('%s with a budget above the context: error 0, recall 1', async (policy) => {
    const c = randomCase(5, 30, 20);
    const out = await runLayer(c, { policy, budget: 64 });
    for (const st of out.steps)
      for (let g = 0; g < c.kvHeads; g++) {
        expect(st.l2![g]).toBe(0);
        expect(st.recall![g]).toBeCloseTo(1, 5);
      }
  });

  it('a run without diagnostics reports none', async () => {
    const out = await runLayer(randomCase(1, 20, 4), { policy: 'quest', budget: 8, diagnostics: false });
    expect(out.steps[0].l2).toBeUndefined();
  });
});

describe('diagnostics of a model', () => {
  const dir = path.join(fixtures, 'llama');
  const prompt: number[] = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')).prompt_ids;
  const spec = openModelFolder(dir).spec;
  const governed = spec.numLayers - 1;
  let model: NativeModel;
  const opts = (policy: string, budget: number, diagnostics = true): NativeSequenceOptions => ({ policy, budget, pageSize: 16, denseLayers: 1, diagnostics });
  const run = async (o: NativeSequenceOptions) => {
    model ??= await loadModel(spec, dir);
    const seq = model.createSequence(o);
    await seq.prefill(Int32Array.from(prompt.slice(0, 200)));
    await seq.feed(Int32Array.from(prompt.slice(200, 230)));
    const tokens = Array.from(await seq.generate(8, new Int32Array(0)));
    const out = { tokens, stats: seq.stats(), diag: seq.diagnostics() };
    seq.close();
    return out;
  };

  it.each([
    ['dense', 0],
    ['quest', 512],
    ['h2o', 512],
  ] as const)('%s at budget %i: one sample per step, governed layer and KV head, error 0 and recall 1', async (policy, budget) => {
    const { stats, diag } = await run(opts(policy, budget));
    expect(diag.l2).toHaveLength(stats.decodeSteps * governed * spec.numKvHeads);
    expect(diag.recall).toHaveLength(diag.l2.length);
    expect(Math.max(...diag.l2)).toBe(0);
    for (const r of diag.recall) expect(r).toBeCloseTo(1, 5);
  });

  it('a small budget misses mass and the tokens are those of a run without diagnostics', async () => {
    const on = await run(opts('quest', 32));
    const off = await run(opts('quest', 32, false));
    expect(on.tokens).toEqual(off.tokens);
    expect(off.diag.l2).toHaveLength(0);
    expect(Math.min(...on.diag.recall)).toBeLessThan(0.99);
    expect(Math.max(...on.diag.l2)).toBeGreaterThan(0);
    for (const r of on.diag.recall) expect(r).toBeLessThanOrEqual(1 + 1e-5);
  });

  it('cells of a shared prefill decoded as a batch report what each reports alone', async () => {
    model ??= await loadModel(spec, dir);
    const cells = [opts('quest', 32), opts('h2o', 48), opts('dense', 0)];
    const seqs = await model.prefillShared(Int32Array.from(prompt.slice(0, 200)), cells);
    await model.feedBatch(seqs, Int32Array.from(prompt.slice(200, 230)));
    await model.generateBatch(seqs, 8, new Int32Array(0));
    for (const [i, c] of cells.entries()) {
      const alone = await run(c);
      expect(Array.from(seqs[i].diagnostics().l2)).toEqual(Array.from(alone.diag.l2));
      expect(Array.from(seqs[i].diagnostics().recall)).toEqual(Array.from(alone.diag.recall));
      seqs[i].close();
    }
  });
});

describe('quest eval --diagnostics', () => {
  const base = ['eval', '--tasks', 'passkey', '--lengths', '256', '--depths', '50', '--samples', '1', '--policies', 'dense,quest', '--budgets', '64', '--device', 'cpu'];
  const summary = (dir: string) => readFileSync(path.join(dir, 'summary.csv'), 'utf8').split('\n')[0];
  const records = (dir: string): EvalRecord[] =>
    readFileSync(path.join(dir, 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));

  it('records carry the diagnostics and the tables their columns; decode time is recorded with and without', async () => {
    const on = tempDir();
    const off = tempDir();
    const a = await quest([...base, '--diagnostics', '--output-path', on]);
    expect(a.exitCode, a.stderr).toBe(0);
    const b = await quest([...base, '--output-path', off]);
    expect(b.exitCode, b.stderr).toBe(0);
    const withDiag = records(on);
    expect(withDiag).toHaveLength(2);
    for (const r of withDiag) {
      expect(r.diagnostics!.samples).toBeGreaterThan(0);
      expect(typeof r.stats.decodeMsPerStep).toBe('number');
    }
    const dense = withDiag.find((r) => r.policy === 'dense')!;
    expect(dense.diagnostics).toMatchObject({ l2Mean: 0, l2P90: 0 });
    expect(dense.diagnostics!.recallP10).toBeCloseTo(1, 5);
    for (const r of records(off)) {
      expect(r.diagnostics).toBeUndefined();
      expect(typeof r.stats.decodeMsPerStep).toBe('number');
    }
    expect(summary(on)).toContain('l2Mean,l2P90,recallMean,recallP10');
    expect(summary(off)).not.toContain('l2Mean');
    const md = readFileSync(path.join(on, 'summary.md'), 'utf8');
    expect(md).toContain('attn recall p10');
    expect(readFileSync(path.join(off, 'summary.md'), 'utf8')).not.toContain('attn recall');
    expect(a.stdout).toContain('attn L2 err mean');
  }, 120_000);

  it('the GPU backend is refused in one line naming the flag (auto runs on the CPU)', () => {
    expect(gpuRefusal({ diagnostics: true })).toBe('--diagnostics: the attention diagnostics are computed on the CPU backend only');
    expect(chooseBackend('auto', { diagnostics: true }).use).toBe('cpu');
  });
});
