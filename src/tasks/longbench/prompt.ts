/**
 * Prompt handling LongBench v1 and v2 share: their middle truncations, the prompt budget at a
 * length, Python's str.strip, and the chat template. The originals followed are THUDM/LongBench
 * at commit 2e00731f8d0bff23dc4325161044d0ed8af94c1e: LongBench/pred.py (v1) and pred.py (v2).
 */
import { QuestError } from '../../errors.js';
import type { TextTokenizer } from '../../model/tokenizer.js';
import type { Sample } from '../types.js';

export interface Truncated {
  text: string;
  truncated: boolean;
}

/**
 * LongBench/pred.py get_pred: the prompt tokenized with the tokenizer's special tokens; over
 * `maxLength` it keeps the first and last int(maxLength / 2) tokens, each half decoded on its
 * own with special tokens skipped. JS's slice(-0), like Python's [-0:], is the whole list.
 */
export function truncateV1(tok: TextTokenizer, prompt: string, maxLength: number): Truncated {
  const ids = tok.encode(prompt, true);
  if (ids.length <= maxLength) return { text: prompt, truncated: false };
  const half = Math.trunc(maxLength / 2);
  return { text: tok.decode(ids.slice(0, half)) + tok.decode(ids.slice(-half)), truncated: true };
}

/**
 * pred.py query_llm (v2): input_ids[:max_len//2] + input_ids[-max_len//2:] (floor division, so
 * an odd max_len keeps one more token at the end), decoded once with special tokens skipped.
 */
export function truncateV2(tok: TextTokenizer, prompt: string, maxLen: number): Truncated {
  const ids = tok.encode(prompt, true);
  if (ids.length <= maxLen) return { text: prompt, truncated: false };
  return { text: tok.decode([...ids.slice(0, Math.floor(maxLen / 2)), ...ids.slice(Math.floor(-maxLen / 2))]), truncated: true };
}

/**
 * The prompt's token budget at length L. The originals truncate the prompt alone to their
 * max_length (model2maxlen.json, set below the model's window) and add the chat template and
 * the generation on top: by default L is that max_length. With `fit` (--longbench-fit) the
 * budget leaves room for both, so that the whole sequence stays within L.
 */
export function promptBudget(tok: TextTokenizer, L: number, maxGen: number, chat: boolean, fit: boolean, task: string): number {
  if (!fit) return L;
  const template = chat && tok.chat ? tok.encode(tok.chat.before).length + tok.encode(tok.chat.after).length : 0;
  const budget = L - maxGen - template;
  if (budget < 1) throw new QuestError(`--lengths ${L}: ${task} generates up to ${maxGen} tokens${template ? ` after ${template} of chat template` : ''}, which leaves --longbench-fit no room for the prompt`);
  return budget;
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
