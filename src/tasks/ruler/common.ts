/**
 * What RULER's generators share (NVIDIA/RULER scripts/data/synthetic): the templates with
 * their answer prefixes (constants.py), tokens to generate, and sizing a prompt so that its
 * tokens plus the tokens to generate fit the target length.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../config/index.js';
import { QuestError } from '../../errors.js';
import type { TextTokenizer } from '../../model/tokenizer.js';
import { largestFitting } from '../fit.js';

/** RULER's base-model prompt is the task template followed by its answer prefix. */
export interface Prompt {
  context: string;
  question: string;
}

/** Splits template + answer prefix at the end of `{context}`: what follows it is the question. */
export function splitPrompt(full: string, context: string): Prompt {
  const at = full.indexOf('{context}');
  return {
    context: full.slice(0, at) + context + full.slice(at + '{context}'.length).split('\n')[0] + '\n',
    question: full.slice(at + '{context}'.length).split('\n').slice(1).join('\n'),
  };
}

export function promptLength(tok: TextTokenizer, p: Prompt): number {
  return tok.encode(p.context, true).length + tok.encode(p.question).length;
}

/**
 * The largest haystack size n in [1, hi] whose prompt plus `generate` tokens fits `length`.
 * RULER grows n by a fixed increment until it overflows; a binary search finds the same n.
 */
export function fitHaystack(tok: TextTokenizer, length: number, generate: number, hi: number, build: (n: number) => Prompt, task: string): number {
  const n = largestFitting(1, hi, (k) => promptLength(tok, build(k)) + generate <= length);
  if (n < 1) throw new QuestError(`${task}: --lengths ${length} is too short for the task's prompt`);
  return n;
}

/**
 * One sample at haystack size n, or the largest smaller size that fits: its own random keys
 * can make it a few tokens longer than the sample n was fitted on (RULER retries smaller).
 */
export function fitSample<T extends { prompt: Prompt }>(tok: TextTokenizer, length: number, generate: number, n: number, build: (n: number) => T): T & { n: number } {
  const fits = (k: number) => promptLength(tok, build(k).prompt) + generate <= length;
  const k = fits(n) ? n : Math.max(1, largestFitting(1, n - 1, fits));
  return { ...build(k), n: k };
}

export const defaultHaystack = path.join(projectRoot, 'datasets', 'haystack', 'kjv.txt');

/**
 * The essay haystack as a word list. RULER reads Paul Graham's essays
 * (json/PaulGrahamEssays.json, {"text": ...}); a plain text file works too. The default is
 * the project's own public-domain text.
 */
export function haystackWords(file: string | undefined): { words: string[]; source: string } {
  const src = file ?? defaultHaystack;
  if (!existsSync(src)) throw new QuestError(`--haystack-file ${src}: no such file`);
  let text = readFileSync(src, 'utf8');
  if (src.endsWith('.json')) {
    try {
      text = String((JSON.parse(text) as { text: unknown }).text);
    } catch {
      throw new QuestError(`--haystack-file ${src}: not JSON with a "text" field, as RULER's PaulGrahamEssays.json is`);
    }
  }
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  if (words.length < 100) throw new QuestError(`--haystack-file ${src}: too short to be a haystack`);
  return { words, source: file ? path.resolve(file) : 'datasets/haystack/kjv.txt (King James Bible, public domain)' };
}

/**
 * Sentences of a text. RULER uses NLTK's punkt tokenizer; this splits after . ! or ? (and a
 * closing quote) before whitespace, which is what punkt does on plain prose.
 */
export function sentences(text: string): string[] {
  return text
    .trim()
    .split(/(?<=[.!?]['"\u2019\u201d)]?)\s+/)
    .filter((s) => s.length > 0);
}

/** The noise sentence of RULER's repeat haystack, variable tracking and passkey. */
export const NOISE = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.';
