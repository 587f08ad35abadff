/**
 * RULER's eight needle-in-a-haystack tasks (scripts/data/synthetic/niah.py at RULER_COMMIT,
 * configured by scripts/synthetic.yaml), scored with string_match_all.
 */
import { adjectives, animals } from 'unique-names-generator';
import { stringMatchAll } from '../../metrics/index.js';
import { choice, randint, rng, sample, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import {
  binarySearch,
  DEPTHS,
  depthIndex,
  drawFitting,
  format,
  haystackText,
  haystackWords,
  NOISE,
  promptText,
  rulerPrompt,
  rulerTokens,
  searched,
  sentences,
  upperBound,
  type Prompt,
} from './common.js';

type Kind = 'numbers' | 'words' | 'uuids';
type Haystack = 'noise' | 'essay' | 'needle';

interface NiahConfig {
  haystack: Haystack;
  key: Kind;
  value: Kind;
  numK: number;
  numV: number;
  numQ: number;
}

// scripts/synthetic.yaml
const CONFIGS: Record<string, NiahConfig> = {
  niah_single_1: { haystack: 'noise', key: 'words', value: 'numbers', numK: 1, numV: 1, numQ: 1 },
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
export const NIAH_TEMPLATE =
  'Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?' +
  ' The special magic {type_needle_v} for {query} mentioned in the provided text are';
// niah.py
const NEEDLE = 'One of the special magic {type_needle_v} for {key} is: {value}.';
// niah.py generate_samples: the search's and the sample loop's step
const incremental = (h: Haystack, length: number) => (h === 'essay' ? 500 : length < 4096 ? 5 : 25);
// RULER draws keys from wonderwords' adjective-noun pairs, a package not available here; these
// lists come from the unique-names-generator package (adjectives, and animals as the nouns).
const WORDS = [...new Set(adjectives.flatMap((a) => animals.map((n) => `${a}-${n}`.toLowerCase())))].sort();

function random(next: Rng, kind: Kind): string {
  if (kind === 'numbers') return String(randint(next, 1_000_000, 9_999_999));
  if (kind === 'words') return choice(next, WORDS);
  // str(uuid.UUID(int=random.getrandbits(128), version=4))
  const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The needle sentence, filled as niah.py's needle.format does. */
export const needle = (type: string, key: string, value: string): string => format(NEEDLE, { type_needle_v: type, key, value });

/**
 * niah.py's template and query for one sample: the singular form when one value is asked
 * for, the queries joined as "a, b, and c".
 */
export function niahPrompt(c: Pick<NiahConfig, 'value' | 'numV' | 'numQ'>, context: string, queries: string[]): Prompt {
  let template = NIAH_TEMPLATE;
  let type: string = c.value;
  if (c.numQ * c.numV === 1) {
    template = template.replaceAll('Some', 'A').replaceAll('are all', 'is').replaceAll('are', 'is').replaceAll('answers', 'answer');
    type = type.slice(0, -1);
  }
  const query = queries.length > 1 ? `${queries.slice(0, -1).join(', ')}, and ${queries[queries.length - 1]}` : queries[0];
  return rulerPrompt(template, { type_needle_v: type, context, query });
}

/** niah.py's essay context: the needles between the sentences at the sampled depths. */
export function essayContext(sents: string[], needles: string[], depths: number[]): string {
  const cuts = [0, ...depths.map((d) => depthIndex(sents.length, d)).sort((a, b) => a - b), sents.length];
  const parts: string[] = [];
  for (let i = 1; i < cuts.length; i++) {
    parts.push(sents.slice(cuts[i - 1], cuts[i]).join(' '));
    if (i - 1 < needles.length) parts.push(needles[i - 1]);
  }
  return parts.join(' ');
}

/** niah.py's noise and needle contexts: each needle inserted at its index, from the highest down. */
export function lineContext(lines: string[], needles: string[], indexes: number[]): string {
  const out = [...lines];
  const at = [...indexes].sort((a, b) => b - a);
  at.forEach((index, i) => out.splice(index, 0, needles[i]));
  return out.join('\n');
}

/** One sample of niah.py's generate_input_output at haystack size n, its draws in niah.py's order. */
function generate(next: Rng, c: NiahConfig, n: number, essay: string[], seed: number) {
  const numK = Math.max(c.numK, c.numQ);
  const keys: string[] = [];
  const values: string[][] = [];
  const needles: string[] = [];
  for (let k = 0; k < numK; k++) {
    keys.push(random(next, c.key));
    const vs: string[] = [];
    for (let v = 0; v < c.numV; v++) {
      vs.push(random(next, c.value));
      needles.push(needle(c.value, keys[k], vs[v]));
    }
    values.push(vs);
  }
  // random.Random(args.random_seed).shuffle(needles): the same permutation every time
  shuffle(rng(seed), needles);
  let context: string;
  let needleDepths: number[];
  if (c.haystack === 'essay') {
    const depths = sample(next, DEPTHS, needles.length);
    context = essayContext(sentences(haystackText(essay, n)), needles, depths);
    needleDepths = depths.sort((a, b) => a - b);
  } else {
    const lines = c.haystack === 'noise' ? Array<string>(n).fill(NOISE) : Array.from({ length: n }, () => needle(c.value, random(next, c.key), random(next, c.value)));
    const indexes = sample(next, [...Array(n).keys()], needles.length);
    context = lineContext(lines, needles, indexes);
    needleDepths = indexes.map((i) => Math.round((100 * i) / n)).sort((a, b) => a - b);
  }
  const queries = sample(next, [...Array(numK).keys()], c.numQ);
  return { prompt: niahPrompt(c, context, queries.map((i) => keys[i])), answers: queries.flatMap((q) => values[q]), needleDepths };
}

function niahTask(name: string, c: NiahConfig): Task {
  return {
    name,
    benchmark: 'ruler',
    source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/niah.py',
    metric: 'string_match_all',
    maxNewTokens: GENERATE,
    samples(opts: SampleOptions): Sample[] {
      const essay = c.haystack === 'essay' ? haystackWords(opts.haystackFile) : null;
      const words = essay?.words ?? [];
      const out: Sample[] = [];
      for (const length of opts.lengths) {
        // prepare.py runs each length as its own process with the same seed
        const next = rng(opts.seed);
        const inc = incremental(c.haystack, length);
        const draw = (n: number) => generate(next, c, n, words, opts.seed);
        const total = (p: Prompt) => rulerTokens(opts.tokenizer, promptText(p)) + GENERATE;
        const upper = upperBound(length, inc, rulerTokens(opts.tokenizer, promptText(draw(inc).prompt)));
        const n = searched(binarySearch(inc, upper, (k) => total(draw(k).prompt) <= length), name, length);
        for (let i = 0; i < opts.perLength; i++) {
          const s = drawFitting(name, length, n, inc, draw, (d) => total(d.prompt) <= length);
          out.push({
            id: `${name}-L${length}-${i}`,
            task: name,
            ...s.prompt,
            answers: s.answers,
            meta: { length, haystackUnits: s.n, needleDepths: s.needleDepths, haystack: c.haystack === 'essay' ? essay!.source : c.haystack },
          });
        }
      }
      return out;
    },
    score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
  };
}

export const NIAH_TASKS: Task[] = Object.entries(CONFIGS).map(([name, c]) => niahTask(name, c));
