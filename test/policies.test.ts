// Each policy against a brute-force reference, on random single-layer cases run through the
// engine's real CPU attention (native().probePolicy), and at model level: a budget at or
// above the context gives the dense result, and each policy reads what its rule says.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, native, type NativeModel, type NativeProbeInput, type NativeProbeOutput, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { rng } from '../src/tasks/rng.js';
import { fixtures } from './helpers.js';

const f32 = Math.fround;
const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);
/** Indices of the k largest scores, ties to the lower index, in increasing order. */
const topK = (scores: ArrayLike<number>, k: number) =>
  range(0, scores.length)
    .sort((a, b) => scores[b] - scores[a] || a - b)
    .slice(0, k)
    .sort((a, b) => a - b);

type Case = Pick<NativeProbeInput, 'heads' | 'kvHeads' | 'headDim' | 'promptLength' | 'steps' | 'keys' | 'values' | 'queries'>;

function randomCase(seed: number, promptLength = 45, steps = 40, heads = 4, kvHeads = 2, headDim = 8): Case {
  const next = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  const total = promptLength + steps;
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => gauss() * scale);
  return { heads, kvHeads, headDim, promptLength, steps, keys: fill(total * kvHeads * headDim, 1.5), values: fill(total * kvHeads * headDim, 1), queries: fill(total * heads * headDim, 1.5) };
}

const probe = (c: Case, opts: Partial<NativeSequenceOptions>): Promise<NativeProbeOutput> =>
  native().probePolicy({ policy: 'dense', budget: 0, pageSize: 4, denseLayers: 0, ...opts, ...c } as NativeProbeInput);

/** The positions a step read for KV head g (an empty selection means all of them). */
const readSet = (sel: Int32Array, pos: number) => (sel.length === 0 ? range(0, pos + 1) : Array.from(sel));

const seeds = [1, 2, 3, 4, 5];

describe('streaming', () => {
  it.each(seeds)('keeps the sinks and the most recent tokens (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 16;
    const out = await probe(c, { policy: 'streaming', budget: B, streamingSinks: 4 });
    out.steps.forEach((st, s) => {
      const pos = c.promptLength + s;
      const want = pos + 1 <= B ? range(0, pos + 1) : [...range(0, 4), ...range(pos + 1 - (B - 4), pos + 1)];
      for (const sel of st.selection) expect(readSet(sel, pos)).toEqual(want);
    });
  });
});

describe('h2o', () => {
  it.each(seeds)('keeps the heaviest half and the recent half, evicting for good (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 20;
    const out = await probe(c, { policy: 'h2o', budget: B });
    expect(out.prefill.sums).toHaveLength(c.kvHeads);
    for (let g = 0; g < c.kvHeads; g++) {
      const score = new Float64Array(c.promptLength + c.steps);
      out.prefill.sums[g].forEach((v, t) => (score[t] += v));
      let kept = range(0, c.promptLength);
      const evicted = new Set<number>();
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        kept = [...kept, pos];
        if (kept.length > B) {
          const heavy = Math.floor(B / 2);
          const older = kept.slice(0, kept.length - (B - heavy));
          const top = topK(older.map((t) => f32(score[t])), heavy).map((i) => older[i]);
          const next = [...top, ...kept.slice(kept.length - (B - heavy))];
          kept.filter((t) => !next.includes(t)).forEach((t) => evicted.add(t));
          kept = next;
        }
        const got = readSet(st.selection[g], pos);
        expect(got).toEqual(kept);
        expect(got.some((t) => evicted.has(t))).toBe(false);
        st.probs[g].forEach((v, t) => (score[t] += v));
      });
    }
  });
});

describe('tova', () => {
  it.each(seeds)('evicts the least attended token after each step (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 16;
    const out = await probe(c, { policy: 'tova', budget: B });
    for (let g = 0; g < c.kvHeads; g++) {
      let kept = topK(out.prefill.last[g].subarray(0, c.promptLength), B - 1);
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        const read = [...kept, pos];
        expect(readSet(st.selection[g], pos)).toEqual(read);
        const p = st.probs[g];
        let worst = 0;
        for (let i = 1; i < read.length; i++) if (p[read[i]] < p[read[worst]]) worst = i;
        kept = read.filter((_, i) => i !== worst);
      });
    }
  });
});

describe('snapkv', () => {
  it.each(seeds)('keeps the pooled top of the window attention, then everything new (seed %i)', async (seed) => {
    const c = randomCase(seed, 80, 20);
    const B = 24;
    const W = 8;
    const K = 7;
    const out = await probe(c, { policy: 'snapkv', budget: B, snapkvWindow: W, snapkvKernel: K });
    for (let g = 0; g < c.kvHeads; g++) {
      const w = out.prefill.window[g];
      const prefix = c.promptLength - W;
      const pooled = range(0, prefix).map((j) => Math.max(...range(Math.max(0, j - 3), Math.min(prefix, j + 4)).map((t) => w[t])));
      const kept = [...topK(pooled, B - W), ...range(prefix, c.promptLength)];
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        expect(readSet(st.selection[g], pos)).toEqual([...kept, ...range(c.promptLength, pos + 1)]);
      });
    }
  });
});

describe('quest', () => {
  it.each(seeds)('keeps each page key min/max current and bounds q.k by its page score (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const out = await probe(c, { policy: 'quest', budget: 16 });
    const { kvHeads: kvh, headDim: d } = c;
    const total = c.promptLength + c.steps;
    const pages = Math.ceil(total / 4);
    for (let p = 0; p < pages; p++)
      for (let g = 0; g < kvh; g++)
        for (let i = 0; i < d; i++) {
          const ks = range(p * 4, Math.min(total, p * 4 + 4)).map((t) => c.keys[(t * kvh + g) * d + i]);
          expect(out.pageMin[(p * kvh + g) * d + i]).toBe(Math.min(...ks));
          expect(out.pageMax[(p * kvh + g) * d + i]).toBe(Math.max(...ks));
        }
    // The bound, for every query of every step and every key of every full page.
    for (let s = 0; s < c.steps; s++) {
      const pos = c.promptLength + s;
      for (let h = 0; h < c.heads; h++) {
        const g = Math.floor(h / (c.heads / kvh));
        const q = c.queries.subarray((pos * c.heads + h) * d, (pos * c.heads + h + 1) * d);
        for (let p = 0; p < Math.floor(pos / 4); p++) {
          let bound = 0;
          for (let i = 0; i < d; i++) bound += Math.max(q[i] * out.pageMax[(p * kvh + g) * d + i], q[i] * out.pageMin[(p * kvh + g) * d + i]);
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
    for (const seed of seeds) {
      const c = randomCase(seed);
      const B = 16;
      const P = 4;
      const out = await probe(c, { policy: 'quest', budget: B, questGqa: mode });
      const { kvHeads: kvh, headDim: d } = c;
      const group = c.heads / kvh;
      out.steps.forEach((st, s) => {
        const pos = c.promptLength + s;
        const current = Math.floor(pos / P);
        expect(st.selection).toHaveLength(lists);
        expect(st.metaBytes).toBe(current * kvh * d * 2 * 4);
        st.selection.forEach((sel, li) => {
          const g = mode === 'group' ? li : Math.floor(li / group);
          const hs = mode === 'group' ? range(g * group, (g + 1) * group) : [li];
          // fp32 in the engine's order, so near-ties resolve as the engine's do
          const scores = range(0, current).map((p) => {
            let total = 0;
            for (const h of hs)
              for (let i = 0; i < d; i++) {
                const q = c.queries[(pos * c.heads + h) * d + i];
                total = f32(total + Math.max(f32(q * out.pageMax[(p * kvh + g) * d + i]), f32(q * out.pageMin[(p * kvh + g) * d + i])));
              }
            return total;
          });
          const pagesRead = topK(scores, B / P - 1);
          expect(Array.from(sel)).toEqual([...pagesRead.flatMap((p) => range(p * P, p * P + P)), ...range(current * P, pos + 1)]);
        });
      });
    }
  });
});

describe('oracle-topk', () => {
  it.each(seeds)('reads B tokens holding the most attention mass (seed %i)', async (seed) => {
    const c = randomCase(seed);
    const B = 16;
    const out = await probe(c, { policy: 'oracle-topk', budget: B });
    const { kvHeads: kvh, headDim: d } = c;
    const group = c.heads / kvh;
    out.steps.forEach((st, s) => {
      const pos = c.promptLength + s;
      for (let g = 0; g < kvh; g++) {
        const mass = new Float64Array(pos + 1);
        for (let h = g * group; h < (g + 1) * group; h++) {
          const logits = range(0, pos + 1).map((t) => {
            let dot = 0;
            for (let i = 0; i < d; i++) dot += c.queries[(pos * c.heads + h) * d + i] * c.keys[(t * kvh + g) * d + i];
            return dot / Math.sqrt(d);
          });
          const mx = Math.max(...logits);
          const e = logits.map((x) => Math.exp(x - mx));
          const z = e.reduce((a, b) => a + b, 0);
          e.forEach((v, t) => (mass[t] += v / z));
        }
        const sel = Array.from(st.selection[g]);
        expect(sel).toHaveLength(B);
        const best = topK(mass, B).reduce((a, t) => a + mass[t], 0);
        expect(sel.reduce((a, t) => a + mass[t], 0)).toBeGreaterThan(best - 1e-5);
      }
    });
  });
});

describe('every policy with a budget at or above the context', () => {
  const policies = ['quest', 'h2o', 'streaming', 'tova', 'snapkv', 'oracle-topk'];
  it.each(policies)('%s reads everything at every step', async (policy) => {
    const c = randomCase(9, 30, 20);
    const out = await probe(c, { policy, budget: 64 });
    for (const st of out.steps) for (const sel of st.selection) expect(sel).toHaveLength(0);
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
    let diff = 0;
    for (let i = 0; i < dense.logits.length; i++) diff = Math.max(diff, Math.abs(got.logits[i] - dense.logits[i]));
    expect(diff).toBe(0);
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
