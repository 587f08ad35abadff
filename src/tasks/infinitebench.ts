/**
 * InfiniteBench (Zhang et al., 2024) from the user's <task>.jsonl files, followed as
 * OpenBMB/InfiniteBench has it at commit 88b3daa6989da2fbe0077170d7a3c84c25d5ae58: the prompts
 * of its open models (src/prompt.py yarn_mistral_templates, which eval_yarn_mistral.py,
 * eval_yi_200k.py and eval_chatglm.py use; no chat template), create_prompt's fields and
 * Math.Find's prefix (src/eval_utils.py), generation lengths (DATA_NAME_TO_MAX_NEW_TOKENS),
 * get_answer's labels, the middle truncation of eval_yarn_mistral.py (truncate_by_tokens, with
 * --lengths as its TRUNCATE_LEN) and the scorers of src/compute_scores.py.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import { choiceScore, codeDebugScore, dialogueScore, firstIntScore, infQaF1, kvRetrievalScore, mathFindScore, rougeLsum } from '../metrics/infinitebench.js';
import { pyLower } from '../metrics/python.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { readJsonl } from './jsonl.js';
import { assemble } from './longbench/prompt.js';
import type { Sample, SampleOptions, Task } from './types.js';

export const INFINITEBENCH_COMMIT = '88b3daa6989da2fbe0077170d7a3c84c25d5ae58';

interface Row {
  id?: unknown;
  context: string;
  input: string;
  answer: unknown;
  options?: string[];
}

interface Dataset {
  /** Its file in the data folder (DATA_NAME_TO_PATH). */
  file: string;
  template: string;
  maxNew: number;
  metric: string;
  score: (prediction: string, label: unknown) => number;
  /** create_prompt's fields beyond context and input; `where` names the row in an error. */
  fields?: (row: Row, where: string) => Record<string, string>;
}

const first = (label: unknown): unknown => (Array.isArray(label) ? label[0] : label);
const strings = (label: unknown): string[] => (Array.isArray(label) ? label.map(String) : [String(label)]);
const options = (r: Row) => Object.fromEntries(['A', 'B', 'C', 'D'].map((c, i) => [`OPTION_${c}`, r.options![i]]));

// prompt.py yarn_mistral_templates, eval_utils.py DATA_NAME_TO_MAX_NEW_TOKENS, compute_scores.py's scorers.
const DATASETS: Record<string, Dataset> = {
  en_sum: { file: 'longbook_sum_eng', template: 'Summarize the book below.\n\n{context}\n\nSummary:', maxNew: 1200, metric: 'rougeLsum', score: (p, l) => Math.max(0, ...strings(l).map((x) => rougeLsum(p, x))) },
  en_qa: { file: 'longbook_qa_eng', template: 'Read the book and answer the question. Be very concise in your answer.\n\n{context}\n\nQuestion: {question}\nAnswer:', maxNew: 40, metric: 'qa_f1', score: (p, l) => infQaF1(p, strings(l)), fields: (r) => ({ question: r.input }) },
  en_mc: { file: 'longbook_choice_eng', template: 'Read the book and answer the question.\n\n{context}\n\nQuestion: {question}\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. {OPTION_D}\n\nThe letter of the correct answer is', maxNew: 40, metric: 'choice', score: (p, l) => choiceScore(p, l as string[]), fields: (r) => ({ question: r.input, ...options(r) }) },
  en_dia: { file: 'longdialogue_qa_eng', template: 'Below is a dialogue script where one random occurrence of a character name is replaced with "$$MASK$$", and you should try to guess who that character is.\n\n{context}\n\nThe name that has been replaced with $$MASK$$ is likely', maxNew: 40, metric: 'name match', score: (p, l) => dialogueScore(p, Array.isArray(l) ? l.map(String) : [...String(l)]) },
  retrieve_passkey: { file: 'passkey', template: 'There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information.\n\n{context}\n\n{input}\n\nThe pass key is', maxNew: 6, metric: 'first integer', score: (p, l) => (typeof first(l) === 'string' ? firstIntScore(p, first(l) as string) : 0) },
  retrieve_number: { file: 'number_string', template: 'There is an important info hidden inside a lot of irrelevant text. Find it. I will quiz you about the important information there.\n\n{context}\n\n{input}\n\nThe sequence of digits is', maxNew: 12, metric: 'first integer', score: (p, l) => (typeof first(l) === 'string' ? firstIntScore(p, first(l) as string) : 0) },
  // compute_scores.py compares a list label with the words (always false); its first element is taken, as the passkey scorer takes it.
  retrieve_kv: { file: 'kv_retrieval', template: 'Extract the value corresponding to the specified key in the JSON object below.\n\n{context}\n\n{input}', maxNew: 50, metric: 'word match', score: (p, l) => kvRetrievalScore(p, String(first(l))) },
  code_debug: { file: 'code_debug', template: 'Following is a Python code where exactly one of the functions/methods has a deliberate error that makes it crash.\n\n{context}\n\nOptions:\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. {OPTION_D}\n\nThe correct option is:', maxNew: 5, metric: 'choice', score: (p, l) => codeDebugScore(p, l as string[]), fields: options },
  math_find: { file: 'math_find', template: '{prefix}\n\n{context}\n\n{input}', maxNew: 3, metric: 'first number', score: (p, l) => mathFindScore(p, Number(first(l))), fields: (r, where) => ({ prefix: mathFindPrefix(r.input, where) }) },
};

/** create_prompt's Math.Find prefix from re.findall(r"The .+ of", input)[0].lower()[:-3]; refused where the original's assert fails. */
function mathFindPrefix(input: string, where: string): string {
  const m = /The .+ of/.exec(input);
  if (!m) throw new QuestError(`${where}: "input" names no target number ("The ... of"), which Math.Find's prompt needs`);
  return `What is ${[...pyLower(m[0])].slice(0, -3).join('')} in the following list?`;
}

/** str.format of a template whose only fields are {name}: every field in one pass. */
function format(template: string, fields: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => fields[name]);
}

/**
 * eval_yarn_mistral.py truncate_by_tokens: the prompt tokenized with special tokens (here by the
 * caller, once for every length); over maxLength it keeps the first and last maxLength // 2;
 * decoded (special tokens skipped) either way.
 */
function truncateMiddle(tok: TextTokenizer, ids: ReturnType<TextTokenizer['encode']>, maxLength: number): { text: string; truncated: boolean } {
  if (ids.length <= maxLength) return { text: tok.decode(ids), truncated: false };
  const split = Math.floor(maxLength / 2);
  return { text: tok.decode([...ids.slice(0, split), ...ids.slice(ids.length - split)]), truncated: true };
}

const hasOptions = (d: Dataset) => d.file === 'code_debug' || d.file === 'longbook_choice_eng';

/** get_answer: Code.Debug and En.MC as [option text, letter]; the others' answer as the file has it. */
function label(d: Dataset, r: Row, where: string): unknown {
  if (!hasOptions(d)) return r.answer;
  const a = r.answer;
  if (!Array.isArray(r.options) || r.options.length < 4) throw new QuestError(`${where}: "options" must list four options`);
  if (Array.isArray(a) && a.length === 2 && ['A', 'B', 'C', 'D'].includes(a[1])) return a;
  const text = typeof a === 'string' ? a : Array.isArray(a) && a.length === 1 ? a[0] : undefined;
  const at = r.options.indexOf(text as string);
  if (at < 0 || at > 3) throw new QuestError(`${where}: "answer" must be one of the options (or [text, letter])`);
  return [text, 'ABCD'[at]];
}

function infTask(name: string, d: Dataset): Task {
  return {
    name,
    benchmark: 'infinitebench',
    source: `InfiniteBench (Zhang et al., 2024) ${d.file}, OpenBMB/InfiniteBench@${INFINITEBENCH_COMMIT.slice(0, 8)}`,
    metric: d.metric,
    maxNewTokens: d.maxNew,
    samples(opts: SampleOptions): Sample[] {
      if (!opts.infinitebenchDir) throw new QuestError(`${name} needs --infinitebench-dir, a folder of InfiniteBench's <task>.jsonl files`);
      const file = path.join(opts.infinitebenchDir, `${d.file}.jsonl`);
      const rows = readJsonl<Row>(file, ['context', 'input', 'answer', ...(hasOptions(d) ? ['options'] : [])], opts.perLength);
      const out: Sample[] = [];
      const prepared = rows.map((r, i) => {
        const where = `${file}: row ${i + 1}`;
        if (typeof r.context !== 'string' || typeof r.input !== 'string') throw new QuestError(`${where}: "context" and "input" must be strings`);
        const fields = { context: r.context, input: r.input, ...(d.fields?.(r, where) ?? {}) };
        const tail = d.template.slice(d.template.indexOf('{context}') + '{context}'.length);
        return { ids: opts.tokenizer.encode(format(d.template, fields), true), question: format(tail, fields), label: label(d, r, where), r };
      });
      for (const L of opts.lengths)
        prepared.forEach(({ ids, question, label: l, r }, i) => {
          const { text, truncated } = truncateMiddle(opts.tokenizer, ids, L);
          out.push({
            id: `${name}-L${L}-${typeof r.id === 'number' || typeof r.id === 'string' ? r.id : i}`,
            task: name,
            ...assemble(opts.tokenizer, text, question, false),
            answers: strings(l),
            meta: { length: L, truncated, label: l },
          });
        });
      return out;
    },
    score: (prediction, sample) => d.score(prediction, sample.meta.label),
  };
}

export const INFINITEBENCH_TASKS: Task[] = Object.entries(DATASETS).map(([n, d]) => infTask(n, d));

/** The InfiniteBench tasks whose files are in `dir`. */
export function infinitebenchAvailable(dir: string): string[] {
  return Object.entries(DATASETS)
    .filter(([, d]) => existsSync(path.join(dir, `${d.file}.jsonl`)))
    .map(([n]) => n);
}
