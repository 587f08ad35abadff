/**
 * RULER's qa_1 (SQuAD) and qa_2 (HotpotQA) (scripts/data/synthetic/qa.py at RULER_COMMIT): the documents of
 * a question among distractor documents up to the length; string_match_part. The datasets
 * are the user's files in their original formats (SQuAD v2 dev JSON, HotpotQA dev JSON).
 */
import { existsSync, readFileSync } from 'node:fs';
import { QuestError } from '../../errors.js';
import { stringMatchPart } from '../../metrics/index.js';
import { rng, sample, shuffle, type Rng } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { binarySearch, drawFitting, format, promptText, rulerPrompt, rulerTokens, searched, upperBound, type Prompt } from './common.js';

// constants.py 'qa': tokens_to_generate, template + answer_prefix
const GENERATE = 32;
export const QA_TEMPLATE =
  'Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}' +
  ' Answer:';
// qa.py
const DOCUMENT_PROMPT = 'Document {i}:\n{document}';
// qa.py generate_samples: the search's and the sample loop's step
const INCREMENTAL = 10;

interface Qa {
  query: string;
  outputs: string[];
  context: number[];
  more: number[];
}

interface Dataset {
  qas: Qa[];
  docs: string[];
  file: string;
}

type Json = Record<string, unknown>;

/** qa.py read_squad: answerable questions; other paragraphs of the same article come first as distractors. */
function readSquad(file: string, data: Json): Dataset {
  const articles = data.data as { paragraphs: { context: string; qas: { question: string; answers: { text: string }[]; is_impossible?: boolean }[] }[] }[];
  const docs = [...new Set(articles.flatMap((a) => a.paragraphs.map((p) => p.context)))].sort();
  const index = new Map(docs.map((d, i) => [d, i]));
  const qas: Qa[] = [];
  for (const a of articles) {
    const more = a.paragraphs.map((p) => index.get(p.context)!);
    for (const p of a.paragraphs)
      for (const q of p.qas)
        if (!q.is_impossible) qas.push({ query: q.question, outputs: q.answers.map((x) => x.text), context: [index.get(p.context)!], more: more.filter((i) => i !== index.get(p.context)) });
  }
  return { qas, docs, file };
}

/** qa.py read_hotpotqa: each question's own paragraphs ("title\nsentences"). */
function readHotpot(file: string, data: { question: string; answer: string; context: [string, string[]][] }[]): Dataset {
  const text = (t: string, p: string[]) => `${t}\n${p.join('')}`;
  const docs = [...new Set(data.flatMap((d) => d.context.map(([t, p]) => text(t, p))))].sort();
  const index = new Map(docs.map((d, i) => [d, i]));
  return { qas: data.map((d) => ({ query: d.question, outputs: [d.answer], context: d.context.map(([t, p]) => index.get(text(t, p))!), more: [] })), docs, file };
}

function load(kind: 'squad' | 'hotpotqa', files: string[] | undefined, task: string): Dataset {
  for (const file of files ?? []) {
    if (!existsSync(file)) throw new QuestError(`--qa-file ${file}: no such file`);
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      throw new QuestError(`--qa-file ${file}: not valid JSON`);
    }
    if (kind === 'squad' && data && typeof data === 'object' && Array.isArray((data as Json).data)) return readSquad(file, data as Json);
    if (kind === 'hotpotqa' && Array.isArray(data)) return readHotpot(file, data as never);
  }
  throw new QuestError(`${task} needs --qa-file with ${kind === 'squad' ? 'SQuAD v2 dev JSON ({"data": [...]})' : 'HotpotQA dev JSON (a list of questions)'}`);
}

/** qa.py generate_input_output: the question's documents, then its article's others, then
 * random ones up to n (or every document, repeated, when n reaches their number). */
function documents(next: Rng, ds: Dataset, q: Qa, n: number): string[] {
  if (n >= ds.docs.length) return Array.from({ length: n }, (_, i) => ds.docs[i % ds.docs.length]);
  if (n - q.context.length > q.more.length) {
    const taken = new Set([...q.context, ...q.more]);
    const rest = ds.docs.map((_, i) => i).filter((i) => !taken.has(i));
    return [...q.context, ...q.more, ...sample(next, rest, Math.max(0, n - q.context.length - q.more.length))].map((i) => ds.docs[i]);
  }
  return [...q.context, ...sample(next, q.more, n - q.context.length)].map((i) => ds.docs[i]);
}

/** The prompt for documents already in their order: DOCUMENT_PROMPT each, joined by blank lines. */
export function qaPrompt(docs: string[], question: string): Prompt {
  const context = docs.map((d, i) => format(DOCUMENT_PROMPT, { i: i + 1, document: d })).join('\n\n');
  return rulerPrompt(QA_TEMPLATE, { context, query: question });
}

function qaTask(name: string, kind: 'squad' | 'hotpotqa'): Task {
  return {
    name,
    benchmark: 'ruler',
    source: `RULER (Hsieh et al., 2024) scripts/data/synthetic/qa.py on ${kind === 'squad' ? 'SQuAD' : 'HotpotQA'}`,
    metric: 'string_match_part',
    maxNewTokens: GENERATE,
    samples(opts: SampleOptions): Sample[] {
      const ds = load(kind, opts.qaFiles, name);
      const out: Sample[] = [];
      for (const length of opts.lengths) {
        // prepare.py runs each length as its own process with the same seed
        const next = rng(opts.seed);
        const draw = (index: number) => (n: number) => {
          const q = ds.qas[index];
          // random.Random(args.random_seed).shuffle(all_docs): the same permutation every time
          return { prompt: qaPrompt(shuffle(rng(opts.seed), documents(next, ds, q, n)), q.query), answers: q.outputs };
        };
        const total = (p: Prompt) => rulerTokens(opts.tokenizer, promptText(p)) + GENERATE;
        const upper = upperBound(length, INCREMENTAL, rulerTokens(opts.tokenizer, promptText(draw(0)(INCREMENTAL).prompt)));
        const n = searched(binarySearch(INCREMENTAL, upper, (k) => total(draw(0)(k).prompt) <= length), name, length);
        for (let i = 0; i < Math.min(opts.perLength, ds.qas.length); i++) {
          const s = drawFitting(name, length, n, INCREMENTAL, draw(i), (d) => total(d.prompt) <= length);
          out.push({ id: `${name}-L${length}-${i}`, task: name, ...s.prompt, answers: s.answers, meta: { length, documents: s.n, source: ds.file } });
        }
      }
      return out;
    },
    score: (prediction, sample) => stringMatchPart(prediction, sample.answers),
  };
}

export const QA_TASKS: Task[] = [qaTask('qa_1', 'squad'), qaTask('qa_2', 'hotpotqa')];
