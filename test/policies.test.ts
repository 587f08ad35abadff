// Each policy against a brute-force reference, on random single-layer cases run through the
// engine's real CPU attention (native().runOneLayer), and at model level: a budget at or
// above the context gives the dense result, and each policy reads what its rule says.
// The references compute every attention probability themselves, in float64, from the
// case's raw queries and keys (runOneLayer caches keys as given, no RoPE): they never read the
// engine's probabilities, column sums or page bounds.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gpuRefusal, loadModel, native, type NativeModel, type NativeOneLayerInput, type NativeOneLayerOutput, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { fixtures, headProbabilities, randomCase, relDiff, type LayerCase as Case } from './helpers.js';

const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);
/** Indices of the k largest scores, ties to the lower index, in increasing order. */
const topK = (scores: ArrayLike<number>, k: number) =>
  range(0, scores.length)
    .sort((a, b) => scores[b] - scores[a] || a - b)
    .slice(0, k)
    .sort((a, b) => a - b);


const runLayer = (c: Case, opts: Partial<NativeSequenceOptions>): Promise<NativeOneLayerOutput> =>
  native().runOneLayer({ policy: 'dense', budget: 0, pageSize: 4, denseLayers: 0, ...opts, ...c } as NativeOneLayerInput);

/** The positions a step read for KV head g (an empty selection means all of them). */
const readSet = (sel: Int32Array, pos: number) => (sel.length === 0 ? range(0, pos + 1) : Array.from(sel));

/**
 * The reference attention: the query at position r, summed over the query heads of KV head g,
 * over the positions `over` (softmax of q.k / sqrt(d) over that set), as [position] over the
 * whole case; float64 from the raw inputs.
 */
function groupAttention(c: Case, r: number, g: number, over: readonly number[], acc: Float64Array = new Float64Array(c.promptLength + c.steps)): Float64Array {
  const group = c.heads / c.kvHeads;
  for (let h = g * group; h < (g + 1) * group; h++) {
    const probs = headProbabilities(c, r, h, over);
    over.forEach((t, j) => (acc[t] += probs[j]));
  }
  return acc;
}

/** Column sums of the causal prefill's attention over the query rows `rows`, for KV head g. */
function prefillColumns(c: Case, g: number, rows: readonly number[]): Float64Array {
  const acc: Float64Array = new Float64Array(c.promptLength + c.steps);
  for (const r of rows) groupAttention(c, r, g, range(0, r + 1), acc);
  return acc;
}

// The engine ranks fp32 sums of at most a few hundred positive terms (relative error below
// 1e-5): reference scores closer than NEAR times the k-th score are a near tie, where the
// engine may rank either way. Quest's scores are sums of both signs: there NEAR times the
// largest score.
const NEAR = 1e-4;

/**
 * The margin of the reference's cut at its k best: (the k-th score - the best left out) over
 * the k-th score, or with `signed` the largest |score|; Infinity where nothing is left to choose.
 */
function cutMargin(scores: ArrayLike<number>, k: number, signed = false): number {
  if (k === 0 || k >= scores.length) return Infinity;
  const want = topK(scores, k);
  const kth = Math.min(...want.map((i) => scores[i]));
  const left = Math.max(...range(0, scores.length).filter((i) => !want.includes(i)).map((i) => scores[i]));
  return (kth - left) / (signed ? Math.max(...Array.from(scores, Math.abs)) : kth);
}

/**
 * Checks `got` (indices into `scores`) against the reference's k best, and the engine's
 * recorded `margin` of that cut against the reference's (within NEAR). Where the k-th and the
 * best left out are a near tie (and not exactly equal, which both sides break to the lower
 * index), any choice is accepted that takes every clearly better index and no clearly worse
 * one; returns whether the step was compared exactly.
 */
function checkTop(got: number[], scores: ArrayLike<number>, k: number, margin: number, signed = false): boolean {
  const ref = cutMargin(scores, k, signed);
  if (ref === Infinity) expect(margin).toBe(Infinity);
  else expect(Math.abs(margin - ref)).toBeLessThanOrEqual(NEAR);
  const want = topK(scores, k);
  const kth = Math.min(...want.map((i) => scores[i]));
  const eps = NEAR * (signed ? Math.max(...Array.from(scores, Math.abs)) : kth);
  const band = range(0, scores.length).filter((i) => Math.abs(scores[i] - kth) <= eps);
  const straddles = band.some((i) => want.includes(i)) && band.some((i) => !want.includes(i));
  if (!straddles || band.every((i) => scores[i] === kth)) {
    expect(got).toEqual(want);
    return true;
  }
  expect(new Set(got).size).toBe(k);
  for (const i of got) expect(scores[i]).toBeGreaterThanOrEqual(kth - eps);
  for (const i of range(0, scores.length)) if (scores[i] > kth + eps) expect(got).toContain(i);
  return false;
}

/** Most steps must be compared exactly: near ties are rare on these random cases. */
function expectMostCompared(compared: number, steps: number) {
  expect(compared).toBeGreaterThanOrEqual(0.9 * steps);
}

const seeds = [1, 2, 3, 4, 5];

describe('the attention runOneLayer reports', () => {
  // fp32 softmax and sums against float64: a few units of fp32 rounding of the largest value.
  const TOL = 1e-5;
  it.each(seeds)('equals the reference: prefill column sums, last row and window, and each step over what it read (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const P = c.promptLength;
    const W = 8;
    const asks = [
      ['h2o', 'sums', range(0, P)],
      ['tova', 'last', [P - 1]],
      ['snapkv', 'window', range(P - W, P)],
    ] as const;
    for (const [policy, field, rows] of asks) {
      const out = await runLayer(c, { policy, budget: 20, snapkvWindow: W });
      for (let g = 0; g < c.kvHeads; g++) {
        const got = out.prefill[field][g];
        expect(got).toHaveLength(P);
        expect(relDiff(got, prefillColumns(c, g, rows).subarray(0, P))).toBeLessThan(TOL);
      }
      out.steps.forEach((st, s) => {
        const pos = P + s;
        for (let g = 0; g < c.kvHeads; g++) {
          const read = readSet(st.selection[g], pos);
          expect(st.probs[g]).toHaveLength(pos + 1);
          expect(relDiff(st.probs[g], groupAttention(c, pos, g, read).subarray(0, pos + 1))).toBeLessThan(TOL);
        }
      });
    }
  });
});

describe('streaming', () => {
  it.each(seeds)('keeps the sinks and the most recent tokens (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 16;
    const out = await runLayer(c, { policy: 'streaming', budget: B, streamingSinks: 4 });
    out.steps.forEach((st, s) => {
      const pos = c.promptLength + s;
      const want = pos + 1 <= B ? range(0, pos + 1) : [...range(0, 4), ...range(pos + 1 - (B - 4), pos + 1)];
      for (const sel of st.selection) expect(readSet(sel, pos)).toEqual(want);
      expect(Array.from(st.margins)).toEqual(st.selection.map(() => Infinity)); // nothing ranked
    });
  });
});

describe('h2o', () => {
  it.each(seeds)('keeps the heaviest half and the recent half, evicting for good (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 20;
    const heavy = B / 2;
    const out = await runLayer(c, { policy: 'h2o', budget: B });
    let compared = 0;
    let ranked = 0;
    for (let g = 0; g < c.kvHeads; g++) {
      // The attention each token received from every prefill query, then from each step
      // over the tokens that step read.
      const score = prefillColumns(c, g, range(0, c.promptLength));
      let kept = range(0, c.promptLength);
      const evicted = new Set<number>();
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        kept = [...kept, pos];
        const got = readSet(st.selection[g], pos);
        if (kept.length > B) {
          const older = kept.slice(0, kept.length - (B - heavy));
          expect(got.slice(heavy)).toEqual(kept.slice(kept.length - (B - heavy)));
          ranked++;
          if (checkTop(got.slice(0, heavy).map((t) => older.indexOf(t)), older.map((t) => score[t]), heavy, st.margins[g])) compared++;
          kept.filter((t) => !got.includes(t)).forEach((t) => evicted.add(t));
          kept = got;
        } else {
          expect(got).toEqual(kept);
          expect(st.margins[g]).toBe(Infinity);
        }
        expect(got.some((t) => evicted.has(t))).toBe(false);
        groupAttention(c, pos, g, got, score);
      });
    }
    expect(ranked).toBe(c.steps * c.kvHeads);
    expectMostCompared(compared, ranked);
  });
});

describe('tova', () => {
  it.each(seeds)('evicts the least attended token after each step (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 16;
    const out = await runLayer(c, { policy: 'tova', budget: B });
    let compared = 0;
    let ranked = 0;
    for (let g = 0; g < c.kvHeads; g++) {
      // After the prefill: the B - 1 tokens the last prompt token attended to most, and the new one.
      const first = readSet(out.steps[0].selection[g], c.promptLength);
      expect(first.at(-1)).toBe(c.promptLength);
      ranked++;
      if (checkTop(first.slice(0, -1), prefillColumns(c, g, [c.promptLength - 1]).subarray(0, c.promptLength), B - 1, out.steps[0].margins[g])) compared++;
      // Each next step reads what this one read but its least attended token, and the new one.
      out.steps.slice(0, -1).forEach((st, s) => {
        const pos = c.promptLength + s;
        const read = readSet(st.selection[g], pos);
        expect(read).toHaveLength(B);
        const p = groupAttention(c, pos, g, read);
        const next = readSet(out.steps[s + 1].selection[g], pos + 1);
        expect(next.at(-1)).toBe(pos + 1);
        ranked++;
        if (checkTop(next.slice(0, -1).map((t) => read.indexOf(t)), read.map((t) => p[t]), B - 1, out.steps[s + 1].margins[g])) compared++;
      });
    }
    expect(ranked).toBe(c.steps * c.kvHeads);
    expectMostCompared(compared, ranked);
  });
});

describe('snapkv', () => {
  it.each(seeds)('keeps the pooled top of the window attention, then everything new (seed %i)', async (seed) => {
    const c = randomCase(seed, 80, 20);
    const B = 24;
    const W = 8;
    const K = 7;
    const out = await runLayer(c, { policy: 'snapkv', budget: B, snapkvWindow: W, snapkvKernel: K });
    const prefix = c.promptLength - W;
    const half = Math.floor(K / 2);
    for (let g = 0; g < c.kvHeads; g++) {
      const w = prefillColumns(c, g, range(prefix, c.promptLength));
      const pooled = range(0, prefix).map((j) => Math.max(...range(Math.max(0, j - half), Math.min(prefix, j + half + 1)).map((t) => w[t])));
      const kept = readSet(out.steps[0].selection[g], c.promptLength).slice(0, B - W);
      // Two rankings a seed: each must be clear of near ties.
      expect(checkTop(kept, pooled, B - W, out.steps[0].margins[g])).toBe(true);
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        expect(readSet(st.selection[g], pos)).toEqual([...kept, ...range(prefix, pos + 1)]);
        if (s > 0) expect(st.margins[g]).toBe(Infinity); // decided once, at the first step
      });
    }
  });
});

describe('snapkv with --snapkv-interval', () => {
  it.each(seeds)('re-selects every interval from the last window decode queries over what they read (seed %i)', async (seed) => {
    const c = randomCase(seed, 40, 60);
    const [B, W, K, N] = [24, 8, 3, 10];
    const out = await runLayer(c, { policy: 'snapkv', budget: B, snapkvWindow: W, snapkvKernel: K, snapkvInterval: N });
    const half = Math.floor(K / 2);
    let ranked = 0;
    let compared = 0;
    for (let g = 0; g < c.kvHeads; g++) {
      // The prefill's choice (checked in the test above), then every step from `tail` on.
      let kept = readSet(out.steps[0].selection[g], c.promptLength).filter((t) => t < c.promptLength);
      let tail = c.promptLength;
      const history: Float64Array[] = [];
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        const got = readSet(st.selection[g], pos);
        if (s > 0 && s % N === 0) {
          const from = pos - W;
          const read = [...kept, ...range(tail, pos)];
          const cand = read.filter((t) => t < from);
          const recent = read.filter((t) => t >= from);
          if (cand.length > B - W) {
            const score = cand.map((t) => history.slice(-W).reduce((a, h) => a + h[t], 0));
            const pooled = cand.map((_, j) => Math.max(...range(Math.max(0, j - half), Math.min(cand.length, j + half + 1)).map((i) => score[i])));
            const chosen = got.filter((t) => t < from);
            ranked++;
            if (checkTop(chosen.map((t) => cand.indexOf(t)), pooled, B - W, st.margins[g])) compared++;
            kept = [...chosen, ...recent];
            tail = pos;
          }
        }
        expect(got).toEqual([...kept, ...range(tail, pos + 1)]);
        history.push(groupAttention(c, pos, g, got));
      });
    }
    expect(ranked).toBe(Math.floor((c.steps - 1) / N) * c.kvHeads);
    expectMostCompared(compared, ranked);
  });

  it('is refused on the GPU, naming the flag', () => {
    expect(gpuRefusal({ snapkvInterval: 128 })).toBe("--snapkv-interval 128: SnapKV's re-selection during decode runs on the CPU backend only");
    expect(gpuRefusal({ snapkvInterval: 0 })).toBeNull();
  });
});

/** Each page's element-wise key min and max, [page][kv head][dim], from the raw keys. */
function pageBounds(c: Case, P: number) {
  const { kvHeads: kvh, headDim: d } = c;
  const total = c.promptLength + c.steps;
  const pages = Math.ceil(total / P);
  const min = new Float64Array(pages * kvh * d).fill(Infinity);
  const max = new Float64Array(pages * kvh * d).fill(-Infinity);
  for (let t = 0; t < total; t++)
    for (let g = 0; g < kvh; g++)
      for (let i = 0; i < d; i++) {
        const at = (Math.floor(t / P) * kvh + g) * d + i;
        const k = c.keys[(t * kvh + g) * d + i];
        min[at] = Math.min(min[at], k);
        max[at] = Math.max(max[at], k);
      }
  return { min, max };
}

describe('quest', () => {
  it.each(seeds)('keeps each page key min/max current and bounds q.k by its page score (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const out = await runLayer(c, { policy: 'quest', budget: 16 });
    const { kvHeads: kvh, headDim: d } = c;
    const { min, max } = pageBounds(c, 4);
    expect(Array.from(out.pageMin)).toEqual(Array.from(min));
    expect(Array.from(out.pageMax)).toEqual(Array.from(max));
    // The bound, for every query of every step and every key of every full page.
    for (let s = 0; s < c.steps; s++) {
      const pos = c.promptLength + s;
      for (let h = 0; h < c.heads; h++) {
        const g = Math.floor(h / (c.heads / kvh));
        const q = c.queries.subarray((pos * c.heads + h) * d, (pos * c.heads + h + 1) * d);
        for (let p = 0; p < Math.floor(pos / 4); p++) {
          let bound = 0;
          for (let i = 0; i < d; i++) bound += Math.max(q[i] * max[(p * kvh + g) * d + i], q[i] * min[(p * kvh + g) * d + i]);
          for (let t = p * 4; t < p * 4 + 4; t++) {
            let dot = 0;
            for (let i = 0; i < d; i++) dot += q[i] * c.keys[(t * kvh + g) * d + i];
            expect(dot).toBeLessThanOrEqual(bound + 1e-9);
          }
        }
      }
    }
  });

  it.each([
    ['group', 2],
    ['per-query-head', 4],
  ] as const)('selects the brute-force top pages plus the current one (%s)', async (mode, lists) => {
    let compared = 0;
    let ranked = 0;
    for (const seed of seeds) {
      const c = randomCase(seed);
      const B = 16;
      const P = 4;
      const out = await runLayer(c, { policy: 'quest', budget: B, questGqa: mode });
      const { kvHeads: kvh, headDim: d } = c;
      const group = c.heads / kvh;
      const { min, max } = pageBounds(c, P);
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        const current = Math.floor(pos / P);
        expect(st.selection).toHaveLength(lists);
        expect(st.metaBytes).toBe(current * kvh * d * 2 * 4);
        st.selection.forEach((sel, li) => {
          const g = mode === 'group' ? li : Math.floor(li / group);
          const hs = mode === 'group' ? range(g * group, (g + 1) * group) : [li];
          const scores = range(0, current).map((p) => {
            let total = 0;
            for (const h of hs)
              for (let i = 0; i < d; i++) {
                const q = c.queries[(pos * c.heads + h) * d + i];
                total += Math.max(q * max[(p * kvh + g) * d + i], q * min[(p * kvh + g) * d + i]);
              }
            return total;
          });
          const pages = [...new Set(Array.from(sel, (t) => Math.floor(t / P)))].filter((p) => p < current);
          expect(Array.from(sel)).toEqual([...pages.flatMap((p) => range(p * P, p * P + P)), ...range(current * P, pos + 1)]);
          ranked++;
          if (checkTop(pages, scores, B / P - 1, st.margins[li], true)) compared++;
        });
      });
    }
    expectMostCompared(compared, ranked);
  });
});

describe('oracle-topk', () => {
  it.each(seeds)('reads the B tokens holding the most attention mass (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 16;
    const out = await runLayer(c, { policy: 'oracle-topk', budget: B });
    let compared = 0;
    out.steps.forEach((st, s) => {
      const pos = c.promptLength + s;
      for (let g = 0; g < c.kvHeads; g++) {
        const mass = groupAttention(c, pos, g, range(0, pos + 1)).subarray(0, pos + 1);
        if (checkTop(Array.from(st.selection[g]), mass, B, st.margins[g])) compared++;
      }
    });
    expectMostCompared(compared, c.steps * c.kvHeads);
  });
});

describe('every policy with a budget at or above the context', () => {
  const policies = ['quest', 'h2o', 'streaming', 'tova', 'snapkv', 'oracle-topk'];
  it.each(policies)('%s reads everything at every step', async (policy) => {
    const c = randomCase(9, 30, 20);
    const out = await runLayer(c, { policy, budget: 64 });
    for (const st of out.steps) {
      for (const sel of st.selection) expect(sel).toHaveLength(0);
      for (const m of st.margins) expect(m).toBe(Infinity);
    }
  });

  const dir = path.join(fixtures, 'llama');
  const prompt: number[] = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')).prompt_ids;
  let model: NativeModel;
  const run = async (opts: Partial<NativeSequenceOptions>, budget: number) => {
    model ??= await loadModel(openModelFolder(dir).spec, dir);
    const seq = model.createSequence({ policy: 'dense', pageSize: 16, denseLayers: 0, ...opts, budget });
    await seq.prefill(Int32Array.from(prompt.slice(0, 200)));
    const logits = await seq.feed(Int32Array.from(prompt.slice(200, 260)));
    const tokens = await seq.generate(16, new Int32Array(0));
    return { logits, tokens: Array.from(tokens), stats: seq.stats() };
  };

  it.each(policies)('%s gives the dense logits and greedy tokens', async (policy) => {
    const dense = await run({}, 0);
    const got = await run({ policy }, 512);
    expect(got.tokens).toEqual(dense.tokens);
    expect(relDiff(got.logits, dense.logits)).toBe(0);
  });

  describe('each policy reads what its rule says, as the engine counts it', () => {
    const B = 64;
    // Decode steps: 60 fed question tokens, then 15 generated tokens fed back.
    const positions = range(200, 275);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    it.each([
      ['streaming', B],
      ['h2o', B],
      ['tova', B],
      ['oracle-topk', B],
      ['quest', mean(positions.map((p) => (B / 16 - 1) * 16 + (p % 16) + 1))],
      ['snapkv', mean(positions.map((p) => B + (p - 200) + 1))],
    ] as const)('%s', async (policy, expected) => {
      const { stats } = await run({ policy }, B);
      expect(stats.decodeSteps).toBe(75);
      expect(stats.tokensRead / stats.policySamples).toBeCloseTo(expected, 9);
    });
  });
});
