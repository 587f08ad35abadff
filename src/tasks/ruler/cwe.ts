/**
 * RULER's common words extraction, cwe (scripts/data/synthetic/common_words_extraction.py at
 * RULER_COMMIT): a numbered list where 10 words appear 30 times and the rest 3 times, after a
 * solved example; string_match_all over the 10.
 */
import { readFileSync } from 'node:fs';
import { QuestError } from '../../errors.js';
import { stringMatchAll } from '../../metrics/index.js';
import { rng, sample, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { binarySearch, defaultHaystack, drawFitting, format, promptText, rulerPrompt, rulerTokens, searched, type Prompt } from './common.js';

// constants.py 'common_words_extraction': tokens_to_generate, template + answer_prefix
const GENERATE = 120;
export const CWE_TEMPLATE =
  'Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?' +
  ' Answer: The top 10 words that appear most often in the list are:';
// synthetic.yaml cwe: freq_cw 30, freq_ucw 3, num_cw 10; the script's num_fewshot 1
const NUM_CW = 10;
// sys_word_pair_random: step 10; the bound's probe of 4096 words, doubled
const INCREMENTAL = 10;
const PROBE_WORDS = 4096;

let vocabulary: string[] | undefined;
/** RULER uses wonderwords' nouns, adjectives and verbs, a package not available here; these are
 * the distinct words of the shipped haystack text (about 12,000). */
export function cweVocabulary(): string[] {
  vocabulary ??= [...new Set(readFileSync(defaultHaystack, 'utf8').toLowerCase().match(/[a-z]{3,}/g) ?? [])].sort();
  return vocabulary;
}

/** Python's list * n: the whole list n times over. */
const times = <T>(xs: T[], n: number): T[] => Array.from({ length: n }, () => xs).flat();

/** get_example's word_list before its shuffle: the common words list `common` times over, then the rest `uncommon` times. */
export const cweWords = (picked: string[], common: number, uncommon: number): string[] => [...times(picked.slice(0, NUM_CW), common), ...times(picked.slice(NUM_CW), uncommon)];

/** get_example's context: "1. word1 2. word2 ..." */
export const numbered = (words: string[]): string => words.map((w, i) => `${i + 1}. ${w}`).join(' ');

/** get_example: the list shuffled by random.Random(args.random_seed), the same permutation for the same length. */
const cweList = (picked: string[], common: number, uncommon: number, seed: number): string => numbered(shuffle(rng(seed), cweWords(picked, common, uncommon)));

/** generate_input_output's text: the solved example, its answer after a space, a newline, then the task. */
export function cwePrompt(exampleList: string, exampleAnswer: string[], list: string): Prompt {
  const shot = format(CWE_TEMPLATE, { context: exampleList, num_cw: NUM_CW, query: '' }) + ' ' + numbered(exampleAnswer);
  return rulerPrompt(CWE_TEMPLATE, { context: list, num_cw: NUM_CW, query: '' }, shot + '\n');
}

/** One draw of generate_input_output with n words; below 4096 tokens, fewer repeats. */
function generate(next: Rng, n: number, short: boolean, seed: number): { prompt: Prompt; answers: string[] } {
  const example = sample(next, cweVocabulary(), short ? 20 : 40);
  const picked = sample(next, cweVocabulary(), n);
  const exampleList = short ? cweList(example, 3, 1, seed) : cweList(example, 10, 3, seed);
  const list = short ? cweList(picked, 6, 1, seed) : cweList(picked, 30, 3, seed);
  return { prompt: cwePrompt(exampleList, example.slice(0, NUM_CW), list), answers: picked.slice(0, NUM_CW) };
}

export const cwe: Task = {
  name: 'cwe',
  benchmark: 'ruler',
  source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/common_words_extraction.py',
  metric: 'string_match_all',
  maxNewTokens: GENERATE,
  samples(opts: SampleOptions): Sample[] {
    const out: Sample[] = [];
    const vocab = cweVocabulary().length;
    for (const length of opts.lengths) {
      // prepare.py runs each length as its own process with the same seed
      const next = rng(opts.seed);
      const short = length < 4096;
      const draw = (n: number) => generate(next, n, short, opts.seed);
      const total = (p: Prompt) => rulerTokens(opts.tokenizer, promptText(p)) + GENERATE;
      const perWord = rulerTokens(opts.tokenizer, promptText(draw(PROBE_WORDS).prompt)) / PROBE_WORDS;
      const upper = Math.max(Math.trunc(Math.floor(length / perWord)) * 2, INCREMENTAL * 2);
      // past the word list RULER draws from its english_words.json, which is not shipped here
      const n = searched(binarySearch(INCREMENTAL, upper, (k) => k <= vocab && total(draw(k).prompt) <= length), 'cwe', length);
      if (n === vocab) throw new QuestError(`cwe: --lengths ${length} needs more than the ${vocab} distinct words of the word list`);
      for (let i = 0; i < opts.perLength; i++) {
        const s = drawFitting('cwe', length, n, INCREMENTAL, draw, (d) => total(d.prompt) <= length);
        out.push({ id: `cwe-L${length}-${i}`, task: 'cwe', ...s.prompt, answers: s.answers, meta: { length, words: s.n } });
      }
    }
    return out;
  },
  score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
};
