/**
 * RULER's frequent words extraction, fwe (scripts/data/synthetic/freq_words_extraction.py):
 * coded words drawn from a Zipf (zeta, alpha 2) distribution, the commonest shown as noise
 * dots; the answer is the next three; string_match_all.
 */
import { stringMatchAll } from '../../metrics/index.js';
import { rng, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { fitHaystack, fitSample, splitPrompt } from './common.js';

// constants.py 'freq_words_extraction'; synthetic.yaml fwe: alpha 2.0; coded_wordlen 6
const GENERATE = 50;
const TEMPLATE =
  "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?";
const ANSWER_PREFIX = ' Answer: According to the coded text above, the three most frequently appeared words are:';
const ALPHA = 2;
const WORD_LEN = 6;
const ZETA_2 = Math.PI ** 2 / 6; // scipy.special.zeta(2.0)

function vocabulary(next: Rng, size: number, seed: number): string[] {
  const set = new Set<string>();
  while (set.size < size) set.add(Array.from({ length: WORD_LEN }, () => String.fromCharCode(97 + Math.floor(next() * 26))).join(''));
  const vocab = shuffle(rng(seed), [...set].sort());
  vocab[0] = '...'; // freq_words_extraction.py: the top-ranked word is noise
  return vocab;
}

function text(vocab: string[], numWords: number, seed: number): string {
  const words = vocab.flatMap((w, k) => Array<string>(Math.floor((numWords * (k + 1) ** -ALPHA) / ZETA_2)).fill(w));
  return shuffle(rng(seed), words).join(' ');
}

export const fwe: Task = {
  name: 'fwe',
  benchmark: 'ruler',
  source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/freq_words_extraction.py',
  metric: 'string_match_all',
  maxNewTokens: GENERATE,
  samples(opts: SampleOptions): Sample[] {
    const out: Sample[] = [];
    const next = rng(opts.seed);
    for (const length of opts.lengths) {
      // vocab_size = max_seq_length // 50. RULER sizes the input to the whole length and
      // generates past it; here input plus generation fit the length, as in RULER's other tasks.
      const size = Math.max(4, Math.floor(length / 50));
      const build = (vocab: string[], s: number, n: number) => ({ prompt: splitPrompt(TEMPLATE + ANSWER_PREFIX, text(vocab, n, s)) });
      const probe = vocabulary(rng(opts.seed + length), size, opts.seed);
      const n = fitHaystack(opts.tokenizer, length, GENERATE, length * 4, (k) => build(probe, opts.seed, k).prompt, 'fwe');
      for (let i = 0; i < opts.perLength; i++) {
        const vocab = vocabulary(next, size, opts.seed);
        const b = fitSample(opts.tokenizer, length, GENERATE, n, (k) => build(vocab, opts.seed, k));
        out.push({ id: `fwe-L${length}-${i}`, task: 'fwe', ...b.prompt, answers: vocab.slice(1, 4), meta: { length, words: b.n } });
      }
    }
    return out;
  },
  score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
};
