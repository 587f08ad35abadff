/**
 * RULER's common words extraction, cwe (scripts/data/synthetic/common_words_extraction.py):
 * a numbered list where 10 words appear 30 times and the rest 3 times, after a solved
 * example; string_match_all over the 10.
 */
import { readFileSync } from 'node:fs';
import { stringMatchAll } from '../../metrics/index.js';
import { rng, sample, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { defaultHaystack, fitHaystack, fitSample, splitPrompt } from './common.js';

// constants.py 'common_words_extraction'; synthetic.yaml cwe: freq_cw 30, freq_ucw 3, num_cw 10
const GENERATE = 120;
const TEMPLATE =
  'Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?';
const ANSWER_PREFIX = ' Answer: The top 10 words that appear most often in the list are:';
const NUM_CW = 10;

let vocabulary: string[] | undefined;
/** RULER uses wonderwords' nouns, adjectives and verbs; these are the distinct words of the
 * shipped haystack text (about 12,000), which makes lists as long as RULER's possible. */
function words(): string[] {
  vocabulary ??= [...new Set(readFileSync(defaultHaystack, 'utf8').toLowerCase().match(/[a-z]{3,}/g) ?? [])].sort();
  return vocabulary;
}

function example(next: Rng, num: number, common: number, uncommon: number, seed: number) {
  const picked = sample(next, words(), num);
  const cw = picked.slice(0, NUM_CW);
  const list = [...cw.flatMap((w) => Array<string>(common).fill(w)), ...picked.slice(NUM_CW).flatMap((w) => Array<string>(uncommon).fill(w))];
  // common_words_extraction.py shuffles with random.Random(args.random_seed): the same permutation of positions each time.
  shuffle(rng(seed), list);
  return { context: list.map((w, i) => `${i + 1}. ${w}`).join(' '), answer: cw };
}

export const cwe: Task = {
  name: 'cwe',
  benchmark: 'ruler',
  source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/common_words_extraction.py',
  metric: 'string_match_all',
  maxNewTokens: GENERATE,
  samples(opts: SampleOptions): Sample[] {
    const out: Sample[] = [];
    const next = rng(opts.seed);
    for (const length of opts.lengths) {
      // Below 4096 tokens RULER uses fewer repeats (example 20 words x3/x1, list x6/x1).
      const short = length < 4096;
      const build = (draw: Rng, n: number) => {
        const seedOf = Math.floor(draw() * 2 ** 31);
        const ex = example(draw, short ? 20 : 40, short ? 3 : 10, short ? 1 : 3, seedOf);
        const main = example(draw, n, short ? 6 : 30, short ? 1 : 3, seedOf);
        const shot = splitPrompt(TEMPLATE + ANSWER_PREFIX, ex.context);
        const p = splitPrompt(TEMPLATE + ANSWER_PREFIX, main.context);
        const answer = ex.answer.map((w, i) => `${i + 1}. ${w}`).join(' ');
        return { prompt: { context: `${shot.context}${shot.question} ${answer}\n${p.context}`, question: p.question }, answer: main.answer };
      };
      const probeSeed = opts.seed + length;
      const n = fitHaystack(opts.tokenizer, length, GENERATE, words().length, (k) => build(rng(probeSeed), k).prompt, 'cwe');
      for (let i = 0; i < opts.perLength; i++) {
        const s = Math.floor(next() * 2 ** 31);
        const b = fitSample(opts.tokenizer, length, GENERATE, n, (k) => build(rng(s), k));
        out.push({ id: `cwe-L${length}-${i}`, task: 'cwe', ...b.prompt, answers: b.answer, meta: { length, words: b.n } });
      }
    }
    return out;
  },
  score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
};
