/**
 * LongBench v1 (Bai et al., 2024): 21 datasets read from the user's JSONL files (as
 * THUDM/LongBench publishes them), followed as THUDM/LongBench has them at commit
 * 2e00731f8d0bff23dc4325161044d0ed8af94c1e: prompts (LongBench/config/dataset2prompt.json),
 * generation lengths (config/dataset2maxlen.json), middle truncation and chat-template
 * exceptions (LongBench/pred.py), first-line post-processing, metrics and LongBench-E's
 * datasets and buckets (LongBench/eval.py, pred.py, metrics.py).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../../errors.js';
import {
  classification,
  codeSim,
  countScore,
  qaF1,
  qaF1Zh,
  retrievalScore,
  retrievalZhScore,
  rougeL,
  rougeZh,
} from '../../metrics/longbench.js';
import { CODE_SIM_DEFAULT, type CodeSimBackend } from '../../metrics/fuzz.js';
import { readJsonl } from '../jsonl.js';
import type { Sample, SampleOptions, Task } from '../types.js';
import { assemble, promptBudget, truncateV1 } from './prompt.js';

type Metric = (prediction: string, truth: string, sample: Sample) => number;

interface Dataset {
  prompt: string;
  maxGen: number;
  metric: [string, Metric];
  category: string;
  language: 'en' | 'zh';
}

const QA: [string, Metric] = ['qa_f1', qaF1];
const QA_ZH: [string, Metric] = ['qa_f1_zh', qaF1Zh];
const ROUGE: [string, Metric] = ['rouge-l', rougeL];
const ROUGE_ZH: [string, Metric] = ['rouge-l_zh', rougeZh];
const CLS: [string, Metric] = ['classification', (p, t, s) => classification(p, t, s.meta.allClasses as string[])];
const CODE: [string, Metric] = ['code_sim', (p, t, s) => codeSim(p, t, s.meta.codeSim as CodeSimBackend)];

// LongBench/config/dataset2prompt.json (byte for byte, narrativeqa's "asconcisely" included),
// config/dataset2maxlen.json, eval.py dataset2metric; the categories as LongBench's README groups them.
const DATASETS: Record<string, Dataset> = {
  narrativeqa: { prompt: 'You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:', maxGen: 128, metric: QA, category: 'single-doc QA', language: 'en' },
  qasper: { prompt: 'You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write "unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write "unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:', maxGen: 128, metric: QA, category: 'single-doc QA', language: 'en' },
  multifieldqa_en: { prompt: 'Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:', maxGen: 64, metric: QA, category: 'single-doc QA', language: 'en' },
  multifieldqa_zh: { prompt: '阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n问题：{input}\n回答：', maxGen: 64, metric: QA_ZH, category: 'single-doc QA', language: 'zh' },
  hotpotqa: { prompt: 'Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:', maxGen: 32, metric: QA, category: 'multi-doc QA', language: 'en' },
  '2wikimqa': { prompt: 'Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:', maxGen: 32, metric: QA, category: 'multi-doc QA', language: 'en' },
  musique: { prompt: 'Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:', maxGen: 32, metric: QA, category: 'multi-doc QA', language: 'en' },
  dureader: { prompt: '请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：', maxGen: 128, metric: ROUGE_ZH, category: 'multi-doc QA', language: 'zh' },
  gov_report: { prompt: 'You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:', maxGen: 512, metric: ROUGE, category: 'summarization', language: 'en' },
  qmsum: { prompt: 'You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:', maxGen: 512, metric: ROUGE, category: 'summarization', language: 'en' },
  multi_news: { prompt: 'You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:', maxGen: 512, metric: ROUGE, category: 'summarization', language: 'en' },
  vcsum: { prompt: '下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：', maxGen: 512, metric: ROUGE_ZH, category: 'summarization', language: 'zh' },
  trec: { prompt: 'Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}', maxGen: 64, metric: CLS, category: 'few-shot', language: 'en' },
  triviaqa: { prompt: 'Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n{input}', maxGen: 32, metric: QA, category: 'few-shot', language: 'en' },
  samsum: { prompt: 'Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}', maxGen: 128, metric: ROUGE, category: 'few-shot', language: 'en' },
  lsht: { prompt: '请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}', maxGen: 64, metric: CLS, category: 'few-shot', language: 'zh' },
  passage_count: { prompt: 'There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ', maxGen: 32, metric: ['count', countScore], category: 'synthetic', language: 'en' },
  passage_retrieval_en: { prompt: 'Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like "Paragraph 1", "Paragraph 2", etc.\n\nThe answer is: ', maxGen: 32, metric: ['retrieval', retrievalScore], category: 'synthetic', language: 'en' },
  passage_retrieval_zh: { prompt: '以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是"段落1"，"段落2"等格式\n\n答案是：', maxGen: 32, metric: ['retrieval_zh', retrievalZhScore], category: 'synthetic', language: 'zh' },
  lcc: { prompt: 'Please complete the code given below. \n{context}Next line of code:\n', maxGen: 64, metric: CODE, category: 'code', language: 'en' },
  'repobench-p': { prompt: 'Please complete the code given below. \n{context}{input}Next line of code:\n', maxGen: 64, metric: CODE, category: 'code', language: 'en' },
};

// LongBench/pred.py: the datasets left without a chat template, and LongBench-E's datasets
// (--e); eval.py: the datasets whose prediction is cut to its first line.
const NO_CHAT = new Set(['trec', 'triviaqa', 'samsum', 'lsht', 'lcc', 'repobench-p']);
const E_DATASETS = new Set(['qasper', 'multifieldqa_en', 'hotpotqa', '2wikimqa', 'gov_report', 'multi_news', 'trec', 'triviaqa', 'samsum', 'passage_count', 'passage_retrieval_en', 'lcc', 'repobench-p']);
const FIRST_LINE = new Set(['trec', 'triviaqa', 'samsum', 'lsht']);

interface Row {
  input: string;
  context: string;
  answers: string[];
  length: number;
  all_classes: string[] | null;
  _id: string;
}

/** eval.py scorer_e's buckets of the sample's `length` field. */
export function lengthBucket(length: number): string {
  return length < 4000 ? '0-4k' : length < 8000 ? '4-8k' : '8k+';
}

/** eval.py: prediction.lstrip('\n').split('\n')[0]. */
export function firstLine(prediction: string): string {
  return prediction.replace(/^\n+/, '').split('\n')[0];
}

// Python's str.format(**row) on LongBench's templates, which hold only {name} fields: every
// field in one pass, the values never read again (a context holding "{input}" stays as it is).
type Fields = Pick<Row, 'context' | 'input'>;
const pyFormat = (template: string, row: Fields): string =>
  template.replace(/\{\{|\}\}|\{(\w+)\}/g, (m, name?: string) => (name === undefined ? m[0] : row[name as keyof Fields]));

/**
 * pred.py's prompt of a row, and its question: the template's tail after {context}, filled
 * (LongBench's templates hold no escaped braces, so the first "{context}" is the field).
 */
function v1Prompt(dataset: string, row: Fields): { prompt: string; question: string } {
  const t = DATASETS[dataset].prompt;
  return { prompt: pyFormat(t, row), question: pyFormat(t.slice(t.indexOf('{context}') + '{context}'.length), row) };
}

function v1Task(name: string, d: Dataset): Task {
  return {
    name,
    benchmark: 'longbench',
    source: `LongBench (Bai et al., 2024) ${name}, ${d.category}, ${d.language}`,
    metric: d.metric[0],
    maxNewTokens: d.maxGen,
    samples(opts: SampleOptions): Sample[] {
      if (!opts.longbenchDir) throw new QuestError(`${name} needs --longbench-dir, a folder of LongBench's <dataset>.jsonl files`);
      if (opts.longbenchE && !E_DATASETS.has(name)) throw new QuestError(`--longbench-e: ${name} is not in LongBench-E (${[...E_DATASETS].join(', ')})`);
      const file = path.join(opts.longbenchDir, `${name}${opts.longbenchE ? '_e' : ''}.jsonl`);
      const rows = readJsonl<Row>(file, ['input', 'context', 'answers', 'length', 'all_classes', '_id'], opts.perLength);
      rows.forEach((r, i) => {
        if (!Array.isArray(r.answers)) throw new QuestError(`${file}:${i + 1}: "answers" must be a list`);
        if (typeof r.context !== 'string' || typeof r.input !== 'string') throw new QuestError(`${file}:${i + 1}: "context" and "input" must be strings`);
      });
      const chat = !NO_CHAT.has(name);
      // eval.py scores every prediction with the all_classes of the file's last line (the loop's last value).
      const allClasses = rows.at(-1)?.all_classes ?? [];
      const out: Sample[] = [];
      for (const L of opts.lengths) {
        const budget = promptBudget(opts.tokenizer, L, d.maxGen, chat, opts.longbenchFit ?? false, name);
        for (const r of rows) {
          const { prompt, question } = v1Prompt(name, r);
          const { text, truncated } = truncateV1(opts.tokenizer, prompt, budget);
          out.push({
            id: `${name}-L${L}-${r._id}`,
            task: name,
            ...assemble(opts.tokenizer, text, question, chat),
            answers: r.answers,
            meta: { length: L, dataLength: r.length, truncated, allClasses, category: d.category, language: d.language, ...(d.metric === CODE ? { codeSim: opts.codeSim ?? CODE_SIM_DEFAULT } : {}) },
            groups: opts.longbenchE ? [lengthBucket(r.length)] : undefined,
          });
        }
      }
      return out;
    },
    score(prediction: string, sample: Sample): number {
      const p = FIRST_LINE.has(name) ? firstLine(prediction) : prediction;
      return Math.max(0, ...sample.answers.map((a) => d.metric[1](p, a, sample)));
    },
  };
}

export const LONGBENCH_TASKS: Task[] = Object.entries(DATASETS).map(([name, d]) => v1Task(name, d));

/** LongBench's datasets whose files are in `dir` (with `e`, LongBench-E's datasets' _e files). */
export function longbenchAvailable(dir: string, e: boolean): string[] {
  return Object.keys(DATASETS).filter((n) => (!e || E_DATASETS.has(n)) && existsSync(path.join(dir, `${n}${e ? '_e' : ''}.jsonl`)));
}
