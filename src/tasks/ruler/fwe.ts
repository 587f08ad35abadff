/**
 * RULER's frequent words extraction, fwe (scripts/data/synthetic/freq_words_extraction.py at
 * RULER_COMMIT): coded words drawn from a Zipf (zeta, alpha 2) distribution, the commonest
 * shown as noise dots; the answer is the next three; string_match_all.
 */
import { QuestError } from '../../errors.js';
import { stringMatchAll } from '../../metrics/index.js';
import { rng, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { promptText, rulerPrompt, rulerTokens, type Prompt } from './common.js';

// constants.py 'freq_words_extraction': tokens_to_generate, template + answer_prefix
const GENERATE = 50;
export const FWE_TEMPLATE =
  "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?" +
  ' Answer: According to the coded text above, the three most frequently appeared words are:';
// synthetic.yaml fwe: alpha 2.0; the script's coded_wordlen 6
const ALPHA = 2;
const WORD_LEN = 6;
const ZETA_2 = Math.PI ** 2 / 6; // scipy.special.zeta(2.0)

function vocabulary(next: Rng, size: number, seed: number): string[] {
  const set = new Set<string>();
  while (set.size < size) set.add(Array.from({ length: WORD_LEN }, () => String.fromCharCode(97 + Math.floor(next() * 26))).join(''));
  // random.Random(args.random_seed).shuffle of the sorted vocabulary
  const vocab = shuffle(rng(seed), [...set].sort());
  vocab[0] = '...'; // freq_words_extraction.py: the top-ranked word is noise
  return vocab;
}

/** gen_text's counts: int(num_words * k**-alpha / zeta(alpha)) for ranks k = 1, 2, ... */
export const zipfCounts = (size: number, numWords: number): number[] => Array.from({ length: size }, (_, i) => Math.trunc((numWords * (i + 1) ** -ALPHA) / ZETA_2));

/** gen_text's words before its shuffle: each word its count times, in rank order. */
export function zipfWords(vocab: string[], numWords: number): string[] {
  const counts = zipfCounts(vocab.length, numWords);
  return vocab.flatMap((w, k) => Array<string>(counts[k]).fill(w));
}

/** gen_text's template.format(context=' '.join(sampled_words), query=''). */
export const fwePrompt = (words: string[]): Prompt => rulerPrompt(FWE_TEMPLATE, { context: words.join(' '), query: '' });

/** gen_text: the words shuffled by random.Random(args.random_seed), in the template. */
const fweText = (vocab: string[], numWords: number, seed: number): Prompt => fwePrompt(shuffle(rng(seed), zipfWords(vocab, numWords)));

export const fwe: Task = {
  name: 'fwe',
  benchmark: 'ruler',
  source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/freq_words_extraction.py',
  metric: 'string_match_all',
  maxNewTokens: GENERATE,
  samples(opts: SampleOptions): Sample[] {
    const out: Sample[] = [];
    const tokens = (p: Prompt) => rulerTokens(opts.tokenizer, promptText(p));
    for (const length of opts.lengths) {
      // prepare.py runs each length as its own process with the same seed
      const next = rng(opts.seed);
      // sys_kwext: the input's budget leaves room for the generation; vocab_size = that // 50
      const max = length - GENERATE;
      const size = Math.floor(max / 50);
      const step = Math.floor(max / 32);
      if (size < 4 || step < 1) throw new QuestError(`fwe: --lengths ${length} is too short for the task's prompt`);
      // generate_input_output(num_words=-1): from max // 6 words up by the step while the text is
      // shorter than the budget, then one step back
      const probe = vocabulary(next, size, opts.seed);
      let numWords = Math.floor(max / WORD_LEN);
      while (tokens(fweText(probe, numWords, opts.seed)) < max) numWords += step;
      numWords -= step;
      for (let i = 0; i < opts.perLength; i++) {
        // each sample: a fresh vocabulary, its words stepped down while the text is too long
        const vocab = vocabulary(next, size, opts.seed);
        let n = numWords;
        let prompt = fweText(vocab, n, opts.seed);
        while (tokens(prompt) > max) {
          n -= step;
          if (n <= 0) throw new QuestError(`fwe: --lengths ${length} is too short for the task's prompt`);
          prompt = fweText(vocab, n, opts.seed);
        }
        out.push({ id: `fwe-L${length}-${i}`, task: 'fwe', ...prompt, answers: vocab.slice(1, 4), meta: { length, words: n } });
      }
    }
    return out;
  },
  score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
};
