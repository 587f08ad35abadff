/**
 * RULER's variable tracking, vt (scripts/data/synthetic/variable_tracking.py at RULER_COMMIT):
 * one chain of four hops hidden in noise lines, after a solved example whose variable names
 * and value are drawn afresh for each sample; string_match_all.
 */
import { stringMatchAll } from '../../metrics/index.js';
import { randint, rng, sample, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { binarySearch, drawFitting, NOISE, promptText, rulerPrompt, rulerTokens, searched, upperBound, type Prompt } from './common.js';

// constants.py 'variable_tracking': tokens_to_generate, template + answer_prefix
const GENERATE = 30;
export const VT_TEMPLATE =
  'Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above.' +
  ' Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assigned the value {query}, they are: ';
// synthetic.yaml vt: num_chains 1, num_hops 4, type_haystack noise
const HOPS = 4;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
// variable_tracking.py: the example's value, replaced in each sample by randomize_icl
const ICL_VALUE = '12345';
// main(): the solved example is sized to 500 tokens, with nothing to generate
const ICL_LENGTH = 500;

interface Chain {
  vars: string[];
  statements: string[];
  value: string;
}

const name = (next: Rng, k: number) => Array.from({ length: k }, () => LETTERS[Math.floor(next() * 26)]).join('');

/**
 * generate_chains for one chain: names of 3 letters in the example, 5 otherwise. On a repeated
 * name RULER's loop draws one more and then fails (IndexError) on the extra chain: null here.
 */
function chain(next: Rng, icl: boolean): Chain | null {
  const vars = Array.from({ length: HOPS + 1 }, () => name(next, icl ? 3 : 5));
  if (new Set(vars).size < vars.length) return null;
  // np.random.randint(10000, 99999) excludes its upper end
  const value = icl ? ICL_VALUE : String(randint(next, 10000, 99998));
  return { vars, value, statements: statements(vars, value) };
}

/** generate_chains' statements: the value to the first name, then each name to the one before. */
export const statements = (vars: string[], value: string): string[] => [`VAR ${vars[0]} = ${value}`, ...vars.slice(1).map((x, j) => `VAR ${x} = VAR ${vars[j]} `)];

/** The noise context: each statement j inserted at sorted random position p_j + j, lines joined by newlines. */
export function vtContext(statements: string[], noises: number, positions: number[]): string {
  const lines = Array<string>(noises).fill(NOISE);
  [...positions].sort((a, b) => a - b).forEach((p, j) => lines.splice(p + j, 0, statements[j]));
  return lines.join('\n').replaceAll('. \n', '.\n');
}

/** generate_input_output's prompt for one chain. */
export function vtPrompt(context: string, value: string): Prompt {
  return rulerPrompt(VT_TEMPLATE, { context, query: value, num_v: HOPS + 1 });
}

function generate(next: Rng, noises: number, icl: boolean): { prompt: Prompt; answers: string[] } | null {
  const c = chain(next, icl);
  if (c === null) return null;
  const positions = sample(next, [...Array(noises).keys()], c.statements.length);
  return { prompt: vtPrompt(vtContext(c.statements, noises, positions), c.value), answers: c.vars };
}

/** The solved example as main() makes it: its input, a space, its answer, a newline. */
export const exampleText = (p: Prompt, vars: string[]): string => `${promptText(p)} ${vars.join(' ')}\n`;

/** The names randomize_icl replaces: the example's last HOPS + 1 words, its answer. */
export const iclNames = (example: string): string[] => example.trim().split(/\s+/).slice(-HOPS - 1);

/**
 * randomize_icl: each of the example's names replaced everywhere (str.replace), one after the
 * other, by its new name, then the value 12345 by the new value.
 */
export function randomizeIcl(example: string, names: string[], value: string): string {
  let out = example;
  iclNames(example).forEach((item, i) => (out = out.split(item).join(names[i])));
  return out.split(ICL_VALUE).join(value);
}

/** The sample loop's insertion: the example in front of the task template, then a newline. */
export const withExample = (shot: string, p: Prompt): Prompt => ({ ...p, context: shot + '\n' + p.context });

/** sys_vartrack_w_noise_random's search and sample loop; `extra` is the tokens counted besides the input. */
function fitNoises(task: string, length: number, inc: number, extra: number, draw: (n: number) => ReturnType<typeof generate>, tok: SampleOptions['tokenizer']): number {
  let probe = draw(inc);
  // RULER stops here on a repeated name; drawing again keeps going
  while (probe === null) probe = draw(inc);
  const upper = upperBound(length, inc, rulerTokens(tok, promptText(probe.prompt)));
  return searched(
    binarySearch(inc, upper, (k) => {
      const s = draw(k);
      return s !== null && rulerTokens(tok, promptText(s.prompt)) + extra <= length;
    }),
    task,
    length,
  );
}

export const vt: Task = {
  name: 'vt',
  benchmark: 'ruler',
  source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/variable_tracking.py',
  metric: 'string_match_all',
  maxNewTokens: GENERATE,
  samples(opts: SampleOptions): Sample[] {
    const tok = opts.tokenizer;
    const out: Sample[] = [];
    for (const length of opts.lengths) {
      // prepare.py runs each length as its own process with the same seed
      const next = rng(opts.seed);
      // the example: 3-letter names, value 12345, noise step 5, up to 500 tokens
      const iclDraw = (n: number) => generate(next, n, true);
      const iclN = fitNoises('vt', ICL_LENGTH, 5, 0, iclDraw, tok);
      const icl = drawFitting('vt', ICL_LENGTH, iclN, 5, iclDraw, (s) => rulerTokens(tok, promptText(s.prompt)) <= ICL_LENGTH);
      const example = exampleText(icl.prompt, icl.answers);
      // the samples: noise step 10, or 5 below 4096 tokens
      const inc = length < 4096 ? 5 : 10;
      const draw = (n: number) => generate(next, n, false);
      const n = fitNoises('vt', length, inc, rulerTokens(tok, example) + GENERATE, draw, tok);
      const drawShot = (k: number) => {
        const s = draw(k);
        if (s === null) return null;
        const names = iclNames(example).map((item) => name(next, item.length));
        const shot = randomizeIcl(example, names, String(randint(next, 10000, 99998)));
        return { prompt: withExample(shot, s.prompt), answers: s.answers };
      };
      for (let i = 0; i < opts.perLength; i++) {
        const s = drawFitting('vt', length, n, inc, drawShot, (d) => rulerTokens(tok, promptText(d.prompt)) + GENERATE <= length);
        out.push({ id: `vt-L${length}-${i}`, task: 'vt', ...s.prompt, answers: s.answers, meta: { length, noises: s.n, exampleNoises: icl.n } });
      }
    }
    return out;
  },
  score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
};
