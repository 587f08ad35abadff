/**
 * Sampled generation for long-generation tasks, on the host over the engine's logits:
 * temperature, then top-k, then top-p, as transformers' warpers apply them in that order
 * (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper), then one seeded uniform draw
 * by inverse CDF. Temperature 0 is greedy (the first largest logit, as the engine's generate).
 */
import type { NativeSequence } from '../engine/native.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { rng } from '../tasks/rng.js';

export interface Sampling {
  /** 0: greedy. */
  temperature: number;
  /** 1: off. */
  topP: number;
  /** 0: off. */
  topK: number;
}

/** The probabilities the warpers leave over the vocabulary (0 where removed), summing to 1. */
export function warpedProbs(logits: ArrayLike<number>, s: Sampling): Float64Array {
  const n = logits.length;
  const x = Float64Array.from(logits, (v) => v / s.temperature);
  if (s.topK > 0) {
    // TopK keeps every score at least the k-th largest (ties with it stay).
    const kth = Float64Array.from(x).sort().at(-Math.min(s.topK, n))!;
    for (let i = 0; i < n; i++) if (x[i] < kth) x[i] = -Infinity;
  }
  const p = softmax(x);
  if (s.topP < 1) {
    // TopP sorts ascending and removes the tokens whose cumulative mass is <= 1 - top_p, keeping the largest.
    const order = Array.from(p.keys()).sort((a, b) => p[a] - p[b]);
    let cum = 0;
    for (let j = 0; j < n - 1; j++) {
      cum += p[order[j]];
      if (cum <= 1 - s.topP) x[order[j]] = -Infinity;
    }
    return softmax(x);
  }
  return p;
}

function softmax(x: Float64Array): Float64Array {
  let mx = -Infinity;
  for (const v of x) mx = Math.max(mx, v);
  const e = Float64Array.from(x, (v) => Math.exp(v - mx));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** The token a uniform draw u in [0, 1) picks from the warped distribution, in vocabulary order. */
export function pickToken(logits: ArrayLike<number>, s: Sampling, u: number): number {
  if (s.temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const p = warpedProbs(logits, s);
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    cum += p[i];
    last = i;
    if (cum > u) return i;
  }
  return last;
}

export interface Generation {
  ids: number[];
  /** The decoded text, cut before the first stop string. */
  text: string;
  stoppedBy: 'eos' | 'stop-string' | 'length';
}

/**
 * Generates from `logits` (the last prefill or feed's), feeding each token but the last;
 * stops at a stop token (not kept), at a stop string (the text is cut before it) or after
 * maxNewTokens. Draws come from one stream seeded by `seed`.
 */
export async function generate(
  seq: NativeSequence,
  logits: Float32Array,
  tok: TextTokenizer,
  o: { maxNewTokens: number; stopTokens: Int32Array; stopStrings: string[]; sampling: Sampling; seed: number },
): Promise<Generation> {
  const draw = rng(o.seed);
  const ids: number[] = [];
  // A stop string of c characters ends within the last c tokens that made text; a margin covers tokens that make none alone.
  const window = Math.max(0, ...o.stopStrings.map((x) => x.length)) + 16;
  const cut = (text: string) => Math.min(...o.stopStrings.map((x) => text.indexOf(x)).filter((i) => i >= 0));
  for (let n = 0; n < o.maxNewTokens; n++) {
    const t = pickToken(logits, o.sampling, draw());
    if (o.stopTokens.includes(t)) return { ids, text: tok.decode(ids), stoppedBy: 'eos' };
    ids.push(t);
    const tail = o.stopStrings.length ? tok.decode(ids.slice(-window)) : '';
    if (o.stopStrings.some((x) => tail.includes(x))) {
      const text = tok.decode(ids);
      const at = cut(text);
      if (Number.isFinite(at)) return { ids, text: text.slice(0, at), stoppedBy: 'stop-string' };
    }
    if (n + 1 < o.maxNewTokens) logits = await seq.feed(Int32Array.of(t));
  }
  return { ids, text: tok.decode(ids), stoppedBy: 'length' };
}
