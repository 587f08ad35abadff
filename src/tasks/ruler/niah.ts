/**
 * RULER's eight needle-in-a-haystack tasks (scripts/data/synthetic/niah.py, configured by
 * scripts/synthetic.yaml), scored with string_match_all.
 */
import { adjectives, animals } from 'unique-names-generator';
import { stringMatchAll } from '../../metrics/index.js';
import { choice, randint, rng, sample, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { fitHaystack, fitSample, haystackWords, NOISE, sentences, splitPrompt, type Prompt } from './common.js';

type Kind = 'numbers' | 'words' | 'uuids';

interface NiahConfig {
  haystack: 'repeat' | 'essay' | 'needle';
  key: Kind;
  value: Kind;
  numK: number;
  numV: number;
  numQ: number;
}

// scripts/synthetic.yaml
const CONFIGS: Record<string, NiahConfig> = {
  niah_single_1: { haystack: 'repeat', key: 'words', value: 'numbers', numK: 1, numV: 1, numQ: 1 },
  niah_single_2: { haystack: 'essay', key: 'words', value: 'numbers', numK: 1, numV: 1, numQ: 1 },
  niah_single_3: { haystack: 'essay', key: 'words', value: 'uuids', numK: 1, numV: 1, numQ: 1 },
  niah_multikey_1: { haystack: 'essay', key: 'words', value: 'numbers', numK: 4, numV: 1, numQ: 1 },
  niah_multikey_2: { haystack: 'needle', key: 'words', value: 'numbers', numK: 1, numV: 1, numQ: 1 },
  niah_multikey_3: { haystack: 'needle', key: 'uuids', value: 'uuids', numK: 1, numV: 1, numQ: 1 },
  niah_multivalue: { haystack: 'essay', key: 'words', value: 'numbers', numK: 1, numV: 4, numQ: 1 },
  niah_multiquery: { haystack: 'essay', key: 'words', value: 'numbers', numK: 1, numV: 1, numQ: 4 },
};

// constants.py: tokens_to_generate, template and answer_prefix of 'niah'
const GENERATE = 128;
const TEMPLATE =
  'Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?';
const ANSWER_PREFIX = ' The special magic {type_needle_v} for {query} mentioned in the provided text are';
const NEEDLE = 'One of the special magic {type_needle_v} for {key} is: {value}.';
// niah.py: DEPTHS = np.round(np.linspace(0, 100, num=40)); numbers have 7 digits.
const DEPTHS = Array.from({ length: 40 }, (_, i) => Math.round((100 * i) / 39));
// RULER draws keys from wonderwords' adjective-noun pairs; these lists come from the
// unique-names-generator package (adjectives, and animals as the nouns).
const WORDS = [...new Set(adjectives.flatMap((a) => animals.map((n) => `${a}-${n}`.toLowerCase())))].sort();

function random(next: Rng, kind: Kind): string {
  if (kind === 'numbers') return String(randint(next, 1_000_000, 9_999_999));
  if (kind === 'words') return choice(next, WORDS);
  const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const fill = (s: string, vars: Record<string, string>) => s.replace(/\{(type_needle_v|key|value|query)\}/g, (_, k: string) => vars[k]);

interface Drawn {
  needles: string[];
  keys: string[];
  values: string[][];
  queries: number[];
  depths: number[];
  noise: string[];
  order: number[];
}

/** The random parts of one sample, drawn once so the haystack size can vary without them. */
function draw(next: Rng, c: NiahConfig, seed: number, maxHaystack: number): Drawn {
  const numK = Math.max(c.numK, c.numQ);
  const keys: string[] = [];
  const values: string[][] = [];
  const needles: string[] = [];
  for (let k = 0; k < numK; k++) {
    keys.push(random(next, c.key));
    const vs: string[] = [];
    for (let v = 0; v < c.numV; v++) {
      vs.push(random(next, c.value));
      needles.push(fill(NEEDLE, { type_needle_v: c.value, key: keys[k], value: vs[v] }));
    }
    values.push(vs);
  }
  // niah.py shuffles the needles with random.Random(args.random_seed): the same order each time.
  shuffle(rng(seed), needles);
  const noise = c.haystack === 'needle' ? Array.from({ length: maxHaystack }, () => fill(NEEDLE, { type_needle_v: c.value, key: random(next, c.key), value: random(next, c.value) })) : [];
  return {
    needles,
    keys,
    values,
    queries: sample(next, [...Array(numK).keys()], c.numQ),
    depths: sample(next, DEPTHS, needles.length),
    noise,
    order: Array.from({ length: needles.length }, () => next()),
  };
}

function build(c: NiahConfig, d: Drawn, n: number, essay: string[]): { prompt: Prompt; needleDepths: number[] } {
  let context: string;
  let needleDepths: number[];
  if (c.haystack === 'essay') {
    const sents = sentences(essay.slice(0, n).join(' '));
    const cuts = [0, ...d.depths.map((p) => Math.floor((sents.length * p) / 100)).sort((a, b) => a - b), sents.length];
    const parts: string[] = [];
    for (let i = 1; i < cuts.length; i++) {
      parts.push(sents.slice(cuts[i - 1], cuts[i]).join(' '));
      if (i - 1 < d.needles.length) parts.push(d.needles[i - 1]);
    }
    context = parts.join(' ');
    needleDepths = [...d.depths].sort((a, b) => a - b);
  } else {
    const lines = c.haystack === 'repeat' ? Array<string>(n).fill(NOISE) : d.noise.slice(0, n);
    // random.sample(range(num_haystack), len(needles)) inserted from the highest index down;
    // the draws in [0, 1) scale with n so one sample keeps its shape as n is fitted.
    const at = [...new Set(d.order.map((u) => Math.floor(u * n)))].sort((a, b) => b - a);
    while (at.length < d.needles.length) at.push(at.length);
    at.forEach((index, i) => lines.splice(index, 0, d.needles[i]));
    context = lines.join('\n');
    needleDepths = at.map((i) => Math.round((100 * i) / n)).reverse();
  }
  let full = TEMPLATE + ANSWER_PREFIX;
  let kind: string = c.value;
  if (c.numQ * c.numV === 1) {
    // niah.py's singular form of the template
    full = full.replaceAll('Some', 'A').replaceAll('are all', 'is').replaceAll('are', 'is').replaceAll('answers', 'answer');
    kind = kind.slice(0, -1);
  }
  const qs = d.queries.map((i) => d.keys[i]);
  const query = qs.length > 1 ? `${qs.slice(0, -1).join(', ')}, and ${qs[qs.length - 1]}` : qs[0];
  return { prompt: splitPrompt(fill(full, { type_needle_v: kind, query }), context), needleDepths };
}

function niahTask(name: string, c: NiahConfig): Task {
  return {
    name,
    benchmark: 'ruler',
    source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/niah.py',
    metric: 'string_match_all',
    maxNewTokens: GENERATE,
    samples(opts: SampleOptions): Sample[] {
      const next = rng(opts.seed);
      const essay = c.haystack === 'essay' ? haystackWords(opts.haystackFile) : null;
      const words = essay?.words ?? [];
      const out: Sample[] = [];
      for (const length of opts.lengths) {
        // The haystack unit is a word (essay) or a line (repeat, needle); a token or more each.
        const hi = c.haystack === 'essay' ? Math.min(words.length, length) : length;
        const probe = draw(rng(opts.seed + length), c, opts.seed, hi);
        const n = fitHaystack(opts.tokenizer, length, GENERATE, hi, (k) => build(c, probe, k, words).prompt, name);
        for (let i = 0; i < opts.perLength; i++) {
          const d = draw(next, c, opts.seed, hi);
          const b = fitSample(opts.tokenizer, length, GENERATE, n, (k) => build(c, d, k, words));
          out.push({
            id: `${name}-L${length}-${i}`,
            task: name,
            ...b.prompt,
            answers: d.queries.flatMap((q) => d.values[q]),
            meta: { length, haystackUnits: b.n, needleDepths: b.needleDepths, haystack: c.haystack === 'essay' ? essay!.source : c.haystack },
          });
        }
      }
      return out;
    },
    score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
  };
}

export const NIAH_TASKS: Task[] = Object.entries(CONFIGS).map(([name, c]) => niahTask(name, c));
