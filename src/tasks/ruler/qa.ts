/**
 * RULER's qa_1 (SQuAD) and qa_2 (HotpotQA) (scripts/data/synthetic/qa.py): the documents of
 * a question among distractor documents up to the length; string_match_part. The datasets
 * are the user's files in their original formats (SQuAD v2 dev JSON, HotpotQA dev JSON).
 */
import { existsSync, readFileSync } from 'node:fs';
import { QuestError } from '../../errors.js';
import { stringMatchPart } from '../../metrics/index.js';
import { rng, sample, shuffle } from '../rng.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { fitHaystack, fitSample, splitPrompt } from './common.js';

// constants.py 'qa'
const GENERATE = 32;
const TEMPLATE =
  'Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}';
const ANSWER_PREFIX = ' Answer:';

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

function qaTask(name: string, kind: 'squad' | 'hotpotqa'): Task {
  return {
    name,
    benchmark: 'ruler',
    source: `RULER (Hsieh et al., 2024) scripts/data/synthetic/qa.py on ${kind === 'squad' ? 'SQuAD' : 'HotpotQA'}`,
    metric: 'string_match_part',
    maxNewTokens: GENERATE,
    samples(opts: SampleOptions): Sample[] {
      const ds = load(kind, opts.qaFiles, name);
      const build = (qi: number, n: number, seed: number) => {
        const q = ds.qas[qi];
        let ids: number[];
        if (n < ds.docs.length) {
          const r = rng(seed);
          if (n - q.context.length > q.more.length) {
            const taken = new Set([...q.context, ...q.more]);
            const rest = ds.docs.map((_, i) => i).filter((i) => !taken.has(i));
            ids = [...q.context, ...q.more, ...sample(r, rest, Math.max(0, n - q.context.length - q.more.length))];
          } else {
            ids = [...q.context, ...sample(r, q.more, n - q.context.length)];
          }
        } else {
          ids = ds.docs.map((_, i) => i);
        }
        // qa.py shuffles the documents with random.Random(args.random_seed).
        const docs = shuffle(rng(opts.seed), ids.map((i) => ds.docs[i]));
        const context = docs.map((d, i) => `Document ${i + 1}:\n${d}`).join('\n\n');
        return { prompt: splitPrompt((TEMPLATE + ANSWER_PREFIX).replace('{query}', q.query), context), answers: q.outputs };
      };
      const out: Sample[] = [];
      for (const length of opts.lengths) {
        const n = fitHaystack(opts.tokenizer, length, GENERATE, ds.docs.length, (k) => build(0, k, opts.seed).prompt, name);
        for (let i = 0; i < Math.min(opts.perLength, ds.qas.length); i++) {
          const b = fitSample(opts.tokenizer, length, GENERATE, n, (k) => build(i, k, opts.seed + i));
          out.push({ id: `${name}-L${length}-${i}`, task: name, ...b.prompt, answers: b.answers, meta: { length, documents: b.n, source: ds.file } });
        }
      }
      return out;
    },
    score: (prediction, sample) => stringMatchPart(prediction, sample.answers),
  };
}

export const QA_TASKS: Task[] = [qaTask('qa_1', 'squad'), qaTask('qa_2', 'hotpotqa')];
