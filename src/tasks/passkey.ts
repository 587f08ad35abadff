/**
 * Passkey retrieval as Quest runs it (mit-han-lab/Quest@01c1623 evaluation/passkey/passkey.py,
 * from epfml/landmark-attention llama/run_test.py): a task line, filler, the key line, more
 * filler, the question, one per line. Depth 0 puts the key at a random point, as Quest's
 * generate_prompt does; the last 400 characters are the question, which Quest's test_model
 * feeds token by token after prefilling the rest.
 */
import { QuestError } from '../errors.js';
import { firstIntegerMatch } from '../metrics/index.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { largestFitting } from './fit.js';
import { randint, rng, type Rng } from './rng.js';
import type { Sample, SampleOptions, Task } from './types.js';

// passkey.py generate_prompt
const TASK_DESCRIPTION =
  'There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.';
const GARBAGE = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.';
const GARBAGE_INF = Array<string>(10000).fill(GARBAGE).join(' ');
const QUESTION = 'What is the pass key? The pass key is';
const KEY_MIN = 1;
const KEY_MAX = 50000;
// test_model: q_length = 400 characters fed after the prefill; 10 tokens generated
export const QUESTION_CHARS = 400;
const MAX_NEW_TOKENS = 10;
// main(): the filler grows by --length-step 128 characters while the prompt is under the target
const LENGTH_STEP = 128;

/** generate_prompt's text: the prefix and the suffix of the filler both start at its beginning. */
export function passkeyText(nGarbage: number, prefix: number, key: number): string {
  if (nGarbage > GARBAGE_INF.length) throw new QuestError(`passkey: the filler would need ${nGarbage} characters; Quest's holds ${GARBAGE_INF.length} (lower --lengths)`);
  const info = `The pass key is ${key}. Remember it. ${key} is the pass key.`;
  return [TASK_DESCRIPTION, GARBAGE_INF.slice(0, prefix), info, GARBAGE_INF.slice(0, nGarbage - prefix), QUESTION].join('\n');
}

/** generate_prompt's filler before the key at a depth in percent: int(n_garbage * depth_ratio / 100). */
export const depthPrefix = (nGarbage: number, depth: number): number => Math.trunc((nGarbage * depth) / 100);

/** generate_prompt's draws: depth 0 draws the split point, another depth computes it; then the key. */
export function drawPasskey(next: Rng, nGarbage: number, depth: number): { text: string; key: number; prefix: number } {
  const prefix = depth === 0 ? randint(next, 0, nGarbage) : depthPrefix(nGarbage, depth);
  const key = randint(next, KEY_MIN, KEY_MAX);
  return { text: passkeyText(nGarbage, prefix, key), key, prefix };
}

/** test_model's split: everything but the last 400 characters is prefilled. */
export function passkeySplit(text: string): { context: string; question: string } {
  const at = Math.max(0, text.length - QUESTION_CHARS);
  return { context: text.slice(0, at), question: text.slice(at) };
}

/**
 * Quest's filler length for a target: n steps up by 128 from 0 while the prompt (random depth,
 * tokens with BOS) stays under the target, and the last n below it is kept. A binary search
 * over the same multiples of 128 finds it, the prompt growing with n.
 */
export function garbageFor(tok: TextTokenizer, target: number, next: Rng): number {
  const under = (k: number) => k === 0 || tok.encode(drawPasskey(next, k * LENGTH_STEP, 0).text, true).length < target;
  const most = Math.floor(GARBAGE_INF.length / LENGTH_STEP);
  let hi = 1;
  while (hi < most && under(hi)) hi *= 2;
  hi = Math.min(hi, most);
  if (hi === most && under(most)) throw new QuestError(`--lengths ${target}: longer than Quest's passkey filler (${GARBAGE_INF.length} characters) can make`);
  return largestFitting(0, hi, under) * LENGTH_STEP;
}

export const passkey: Task = {
  name: 'passkey',
  benchmark: 'passkey',
  source: 'landmark-attention (Mohtashami & Jaggi, 2023) as run by Quest (Tang et al., 2024) evaluation/passkey/passkey.py',
  metric: 'first integer = pass key',
  maxNewTokens: MAX_NEW_TOKENS,
  samples(opts: SampleOptions): Sample[] {
    const next = rng(opts.seed);
    const out: Sample[] = [];
    for (const length of opts.lengths) {
      const chars = garbageFor(opts.tokenizer, length, next);
      for (let i = 0; i < opts.perLength; i++) {
        const depth = opts.depths[i % opts.depths.length];
        const { text, key, prefix } = drawPasskey(next, chars, depth);
        out.push({
          id: `passkey-L${length}-d${depth}-${i}`,
          task: 'passkey',
          ...passkeySplit(text),
          answers: [String(key)],
          meta: { length, depth, randomDepth: depth === 0, prefixChars: prefix, garbageChars: chars },
        });
      }
    }
    return out;
  },
  score: (prediction, sample) => firstIntegerMatch(prediction, sample.answers),
};
