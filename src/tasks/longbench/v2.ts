/**
 * LongBench v2 (Bai et al., 2025): four-choice questions over long contexts, read from the
 * user's data.json, followed as THUDM/LongBench (where LongBench v2 now lives) has it at commit
 * 2e00731f8d0bff23dc4325161044d0ed8af94c1e: the 0-shot prompt (prompts/0shot.txt), its filling,
 * middle truncation, 128 new tokens, answer extraction and the skipping of empty responses
 * (pred.py; greedy here, where the original samples at temperature 0.1), reported overall and
 * by difficulty (easy, hard) and length (short, medium, long) as result.py does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { QuestError } from '../../errors.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { pyStrip } from '../../metrics/python.js';
import { assemble, promptBudget, truncateV2 } from './prompt.js';

// prompts/0shot.txt
const TEMPLATE =
  'Please read the following text and answer the question below.\n\n<text>\n$DOC$\n</text>\n\nWhat is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nFormat your response as follows: "The correct answer is (insert answer here)".';
const MAX_NEW = 128;
const FIELDS = ['_id', 'difficulty', 'length', 'question', 'choice_A', 'choice_B', 'choice_C', 'choice_D', 'answer', 'context'] as const;

type Item = Record<(typeof FIELDS)[number], string>;

/** pred.py extract_answer: "The correct answer is (X)" or "... is X", asterisks removed. */
export function extractChoice(response: string): string | null {
  const r = response.replaceAll('*', '');
  return /The correct answer is \(([A-D])\)/.exec(r)?.[1] ?? /The correct answer is ([A-D])/.exec(r)?.[1] ?? null;
}

function load(file: string | undefined, limit: number): Item[] {
  if (!file) throw new QuestError('longbench_v2 needs --longbench-v2-file, the data.json of THUDM/LongBench-v2');
  if (!existsSync(file)) throw new QuestError(`--longbench-v2-file ${file}: no such file`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new QuestError(`${file}: not valid JSON`);
  }
  if (!Array.isArray(data)) throw new QuestError(`${file}: must be a JSON list of questions`);
  return data.slice(0, limit).map((item, i) => {
    const missing = FIELDS.filter((k) => typeof item?.[k] !== 'string');
    if (missing.length) throw new QuestError(`${file}: item ${i + 1} lacks ${missing.map((m) => `"${m}"`).join(', ')}`);
    return item as Item;
  });
}

// pred.py get_pred: str.replace (every occurrence) in this order, so a document or question
// holding "$Q$" or "$C_A$" has it replaced by the later fields too.
const FILL_ORDER = [
  ['$DOC$', 'context'],
  ['$Q$', 'question'],
  ['$C_A$', 'choice_A'],
  ['$C_B$', 'choice_B'],
  ['$C_C$', 'choice_C'],
  ['$C_D$', 'choice_D'],
] as const;

const fill = (s: string, it: Item): string => FILL_ORDER.reduce((acc, [mark, field]) => acc.split(mark).join(pyStrip(it[field])), s);

/**
 * pred.py's prompt of an item, and its question: the template's tail after $DOC$, filled. No
 * marker spans the newlines around the slots, so the tail fills alike alone or in the prompt.
 */
function v2Prompt(it: Item): { prompt: string; question: string } {
  return { prompt: fill(TEMPLATE, it), question: fill(TEMPLATE.slice(TEMPLATE.indexOf('$DOC$') + '$DOC$'.length), it) };
}

export const longbenchV2: Task = {
  name: 'longbench_v2',
  benchmark: 'longbench_v2',
  source: 'LongBench v2 (Bai et al., 2025) pred.py with prompts/0shot.txt',
  metric: 'accuracy of the extracted choice',
  maxNewTokens: MAX_NEW,
  samples(opts: SampleOptions): Sample[] {
    const items = load(opts.longbenchV2File, opts.perLength);
    const out: Sample[] = [];
    for (const L of opts.lengths) {
      // pred.py sends every prompt through the model's chat template (a chat-completions call).
      const budget = promptBudget(opts.tokenizer, L, MAX_NEW, true, opts.longbenchFit ?? false, 'longbench_v2');
      for (const it of items) {
        const { prompt, question } = v2Prompt(it);
        const { text, truncated } = truncateV2(opts.tokenizer, prompt, budget);
        out.push({
          id: `longbench_v2-L${L}-${it._id}`,
          task: 'longbench_v2',
          ...assemble(opts.tokenizer, text, question, true),
          answers: [it.answer],
          meta: { length: L, truncated, difficulty: it.difficulty, dataLength: it.length },
          groups: [it.difficulty, it.length],
        });
      }
    }
    return out;
  },
  // pred.py skips an empty response (it is never written, so result.py never counts it); one
  // with no extractable choice counts as wrong (result.py's `compensated` is off).
  score: (prediction, sample) => (prediction === '' ? null : extractChoice(prediction) === sample.answers[0] ? 1 : 0),
};
