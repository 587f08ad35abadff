/**
 * Passkey retrieval as landmark-attention defines it (epfml/landmark-attention
 * llama/run_test.py) and Quest evaluates it (mit-han-lab/Quest evaluation/passkey/passkey.py):
 * a task line, filler, the needle at a chosen depth, more filler, then the question.
 */
import { QuestError } from '../errors.js';
import { firstIntegerMatch } from '../metrics/index.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { largestFitting } from './fit.js';
import { randint, rng } from './rng.js';
import type { Sample, SampleOptions, Task } from './types.js';

const TASK_DESCRIPTION =
  'There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.';
const GARBAGE = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.';
const QUESTION = 'What is the pass key? The pass key is';
// Both originals draw the key with random.randint(1, 50000).
const KEY_MIN = 1;
const KEY_MAX = 50000;
// Quest's test_model generates 10 tokens and reads the first integer.
const MAX_NEW_TOKENS = 10;

function filler(chars: number): string {
  const unit = GARBAGE + ' ';
  return unit.repeat(Math.ceil(chars / unit.length) + 1).slice(0, chars);
}

export function passkeyPrompt(garbageChars: number, depth: number, key: number): { context: string; question: string } {
  const prefix = Math.floor((garbageChars * depth) / 100);
  const info = `The pass key is ${key}. Remember it. ${key} is the pass key.`;
  const context = [TASK_DESCRIPTION, filler(prefix), info, filler(garbageChars - prefix), ''].join('\n');
  return { context, question: QUESTION };
}

export function promptTokens(tok: TextTokenizer, context: string, question: string): number {
  return tok.encode(context, true).length + tok.encode(question).length;
}

/** The most filler characters whose prompt stays within `target` tokens. */
export function garbageFor(tok: TextTokenizer, target: number): number {
  const n = largestFitting(0, target * 8, (chars) => promptTokens(tok, passkeyPrompt(chars, 50, KEY_MAX).context, QUESTION) <= target);
  if (n < 0) throw new QuestError(`--lengths ${target}: shorter than the bare passkey prompt`);
  return n;
}

export const passkey: Task = {
  name: 'passkey',
  benchmark: 'passkey',
  source: 'landmark-attention (Mohtashami & Jaggi, 2023) as run by Quest (Tang et al., 2024)',
  metric: 'first integer = pass key',
  maxNewTokens: MAX_NEW_TOKENS,
  samples(opts: SampleOptions): Sample[] {
    const next = rng(opts.seed);
    const out: Sample[] = [];
    for (const length of opts.lengths) {
      const chars = garbageFor(opts.tokenizer, length);
      for (let i = 0; i < opts.perLength; i++) {
        const depth = opts.depths[i % opts.depths.length];
        const key = randint(next, KEY_MIN, KEY_MAX);
        const { context, question } = passkeyPrompt(chars, depth, key);
        out.push({
          id: `passkey-L${length}-d${depth}-${i}`,
          task: 'passkey',
          context,
          question,
          answers: [String(key)],
          meta: { length, depth, garbageChars: chars },
        });
      }
    }
    return out;
  },
  score: (prediction, sample) => firstIntegerMatch(prediction, sample.answers),
};
