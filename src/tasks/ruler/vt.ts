/**
 * RULER's variable tracking, vt (scripts/data/synthetic/variable_tracking.py): one chain of
 * four hops hidden in noise, with a short solved example in front; string_match_all.
 */
import { stringMatchAll } from '../../metrics/index.js';
import { randint, rng, sample, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { fitHaystack, fitSample, NOISE, splitPrompt, type Prompt } from './common.js';

// constants.py 'variable_tracking' (its "assgined" is RULER's own spelling); synthetic.yaml vt
const GENERATE = 30;
const TEMPLATE =
  'Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above.';
const ANSWER_PREFIX = ' Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assgined the value {query}, they are: ';
const HOPS = 4;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

interface Chain {
  vars: string[];
  statements: string[];
  value: string;
  /** Seeds where the statements go, so one chain keeps its shape as the noise is sized. */
  placement: number;
}

function chain(next: Rng, hops: number, letters: number): Chain {
  const vars = new Set<string>();
  while (vars.size < hops + 1) vars.add(Array.from({ length: letters }, () => LETTERS[Math.floor(next() * 26)]).join(''));
  const v = [...vars];
  const value = String(randint(next, 10000, 99998));
  const statements = [`VAR ${v[0]} = ${value}`, ...v.slice(1).map((x, j) => `VAR ${x} = VAR ${v[j]} `)];
  return { vars: v, statements, value, placement: Math.floor(next() * 2 ** 31) };
}

/** The noise with the chain's statements at sorted random positions, as variable_tracking.py builds it. */
function context(c: Chain, noises: number): string {
  const lines: string[] = Array<string>(noises).fill(NOISE + '\n');
  const positions = sample(rng(c.placement), [...Array(noises).keys()], c.statements.length).sort((a, b) => a - b);
  positions.forEach((p, j) => lines.splice(p + j, 0, c.statements[j]));
  return lines.join(' ').replaceAll('. \n', '.\n');
}

function fill(template: string, c: Chain, ctx: string): Prompt {
  const full = template.replaceAll('{query}', c.value).replaceAll('{num_v}', String(c.vars.length));
  return splitPrompt(full, ctx);
}

/** The solved example: variable_tracking.py makes it with 3-letter names, at 500 tokens, and for a
 * base model drops the template's last word before the answer prefix (where a chat template's
 * closing tag would be). */
function example(opts: SampleOptions, next: Rng): string {
  const c = chain(next, Math.min(10, HOPS), 3);
  const head = TEMPLATE.split(/\s+/).slice(0, -1).join(' ');
  const n = fitHaystack(opts.tokenizer, 500, GENERATE, 200, (k) => fill(head + ANSWER_PREFIX, c, context(c, k)), 'vt');
  const p = fill(head + ANSWER_PREFIX, c, context(c, n));
  return `${p.context}${p.question} ${c.vars.join(' ')}\n\n`;
}

export const vt: Task = {
  name: 'vt',
  benchmark: 'ruler',
  source: 'RULER (Hsieh et al., 2024) scripts/data/synthetic/variable_tracking.py',
  metric: 'string_match_all',
  maxNewTokens: GENERATE,
  samples(opts: SampleOptions): Sample[] {
    const next = rng(opts.seed);
    const shot = example(opts, rng(opts.seed + 1));
    const build = (c: Chain, n: number) => {
      const p = fill(TEMPLATE + ANSWER_PREFIX, c, context(c, n));
      return { prompt: { context: ' ' + shot + '\n\n' + p.context, question: p.question } };
    };
    const out: Sample[] = [];
    for (const length of opts.lengths) {
      const probe = chain(rng(opts.seed + length), HOPS, 5);
      const n = fitHaystack(opts.tokenizer, length, GENERATE, length, (k) => build(probe, k).prompt, 'vt');
      for (let i = 0; i < opts.perLength; i++) {
        const c = chain(next, HOPS, 5);
        const b = fitSample(opts.tokenizer, length, GENERATE, n, (k) => build(c, k));
        out.push({ id: `vt-L${length}-${i}`, task: 'vt', ...b.prompt, answers: c.vars, meta: { length, noises: b.n } });
      }
    }
    return out;
  },
  score: (prediction, sample) => stringMatchAll(prediction, sample.answers),
};
