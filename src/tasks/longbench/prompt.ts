/** Prompt handling LongBench v1 and v2 share: middle truncation and the chat template. */
import type { TextTokenizer } from '../../model/tokenizer.js';
import type { Sample } from '../types.js';

/**
 * LongBench's pred.py: a prompt over `maxLength` tokens keeps its first and last
 * int(maxLength / 2) tokens, decoded back to text (special tokens skipped), because the
 * instructions sit at both ends.
 */
export function truncateMiddle(tok: TextTokenizer, prompt: string, maxLength: number): { text: string; truncated: boolean } {
  const ids = tok.encode(prompt, true);
  if (ids.length <= maxLength) return { text: prompt, truncated: false };
  const half = Math.floor(maxLength / 2);
  return { text: tok.decode(ids.slice(0, half)) + tok.decode(ids.slice(ids.length - half)), truncated: true };
}

/**
 * Splits a (possibly truncated) prompt into context and question at `question`, its tail
 * as the template wrote it, and wraps it in the model's chat template when `chat` is asked
 * and the model has one. A question cut by the truncation leaves all as context.
 */
export function assemble(tok: TextTokenizer, text: string, question: string, chat: boolean): Pick<Sample, 'context' | 'question' | 'chat'> {
  const intact = question.length > 0 && text.endsWith(question);
  let context = intact ? text.slice(0, text.length - question.length) : text;
  let q = intact ? question : '';
  if (chat && tok.chat) {
    context = tok.chat.before + context;
    q += tok.chat.after;
    return { context, question: q, chat: true };
  }
  return { context, question: q };
}
