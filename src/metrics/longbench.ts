/**
 * LongBench's metrics (THUDM/LongBench metrics.py), with ROUGE-L as the Python `rouge`
 * package (1.0.1, pltrdy) computes it and jieba for Chinese, as the originals use them.
 */
import { createRequire } from 'node:module';
import { QuestError, errorMessage } from '../errors.js';

const require = createRequire(import.meta.url);
let jieba: { cut(text: string, hmm?: boolean): string[] } | undefined;
/** jieba.cut(s, cut_all=False): the accurate mode with the HMM for unknown words. */
function cut(text: string): string[] {
  if (!jieba) {
    try {
      const { Jieba } = require('@node-rs/jieba') as { Jieba: { withDict(d: Uint8Array): typeof jieba } };
      const { dict } = require('@node-rs/jieba/dict') as { dict: Uint8Array };
      jieba = Jieba.withDict(dict);
    } catch (err) {
      // The GPU machine's bundle (tools/gpu-bundle.sh) leaves the 11 MB dictionary out.
      throw new QuestError(`scoring Chinese text needs @node-rs/jieba, which this installation lacks (${errorMessage(err)}); run npm install`);
    }
  }
  return jieba!.cut(text, true);
}

// Python's string.punctuation
const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const ZH_PUNCT = new Set([...PUNCT, ...'！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.']);
const words = (s: string) => s.split(/\s+/).filter((w) => w.length > 0);

/** normalize_answer: lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(s: string): string {
  const noPunct = [...s.toLowerCase()].filter((c) => !PUNCT.has(c)).join('');
  return words(noPunct.replace(/\b(a|an|the)\b/g, ' ')).join(' ');
}

/** normalize_zh_answer: lower case, no punctuation (ASCII and Chinese), no whitespace. */
export function normalizeZhAnswer(s: string): string {
  return words([...s.toLowerCase()].filter((c) => !ZH_PUNCT.has(c)).join('')).join('');
}

/** f1_score over token lists: the multiset overlap. */
export function f1(prediction: string[], truth: string[]): number {
  const counts = new Map<string, number>();
  for (const t of truth) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const p of prediction) {
    const c = counts.get(p) ?? 0;
    if (c > 0) {
      same++;
      counts.set(p, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / prediction.length;
  const recall = same / truth.length;
  return (2 * precision * recall) / (precision + recall);
}

export function qaF1(prediction: string, truth: string): number {
  return f1(words(normalizeAnswer(prediction)), words(normalizeAnswer(truth)));
}

export function qaF1Zh(prediction: string, truth: string): number {
  const toks = (s: string) => cut(s).map(normalizeZhAnswer).filter((t) => t.length > 0);
  return f1(toks(prediction), toks(truth));
}

/** One longest common subsequence of x and y, reconstructed as rouge's _recon_lcs does. */
function reconLcs(x: string[], y: string[]): string[] {
  const t = Array.from({ length: x.length + 1 }, () => new Int32Array(y.length + 1));
  for (let i = 1; i <= x.length; i++)
    for (let j = 1; j <= y.length; j++) t[i][j] = x[i - 1] === y[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
  const out: string[] = [];
  let i = x.length;
  let j = y.length;
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      out.push(x[i - 1]);
      i--;
      j--;
    } else if (t[i - 1][j] > t[i][j - 1]) i--;
    else j--;
  }
  return out.reverse();
}

/**
 * rouge.Rouge().get_scores([prediction], [truth], avg=True)["rouge-l"]["f"]: sentences split
 * on ".", words on single spaces, summary-level union LCS over word *sets* (its Ngrams are
 * exclusive). LongBench scores 0 where rouge raises (an empty side).
 */
export function rougeL(prediction: string, truth: string): number {
  const sents = (s: string) => s.split('.').filter((x) => x.length > 0).map((x) => words(x).join(' '));
  const hyp = sents(prediction);
  const ref = sents(truth);
  if (hyp.length === 0 || ref.length === 0) return 0;
  const split = (ss: string[]) => ss.flatMap((s) => s.split(' '));
  const m = new Set(split(ref)).size;
  const n = new Set(split(hyp)).size;
  const union = new Set<string>();
  let total = 0;
  for (const r of ref) {
    const before = union.size;
    for (const h of hyp) for (const w of reconLcs(r.split(' '), h.split(' '))) union.add(w);
    total += union.size - before;
  }
  const rec = total / m;
  const prec = total / n;
  return (2 * (prec * rec)) / (prec + rec + 1e-8);
}

export function rougeZh(prediction: string, truth: string): number {
  return rougeL(cut(prediction).join(' '), cut(truth).join(' '));
}

/**
 * classification_score, including its quirks: matches are removed from the list it iterates,
 * and its similarity fallback can never run (it tests `em_match_list != 0`).
 */
export function classification(prediction: string, truth: string, allClasses: string[]): number {
  const matches = allClasses.filter((c) => prediction.includes(c));
  // Python's `for x in list: list.remove(x)` skips the element after each removal.
  for (let i = 0; i < matches.length; i++) {
    if (truth.includes(matches[i]) && matches[i] !== truth) matches.splice(i, 1);
  }
  return matches.includes(truth) ? 1 / matches.length : 0;
}

function numberShare(prediction: string, want: string): number {
  const numbers = prediction.match(/\d+/g) ?? [];
  return numbers.length === 0 ? 0 : numbers.filter((x) => x === want).length / numbers.length;
}

export const countScore = (prediction: string, truth: string) => numberShare(prediction, truth);
export const retrievalScore = (prediction: string, truth: string) => numberShare(prediction, /Paragraph (\d+)/.exec(truth)?.[1] ?? '');
export const retrievalZhScore = (prediction: string, truth: string) => numberShare(prediction, /段落(\d+)/.exec(truth)?.[1] ?? '');

/**
 * fuzz.ratio with python-Levenshtein (fuzzywuzzy's fast path): round(100 * (1 - indel
 * distance / total length)), on the first prediction line free of `, # and //.
 */
export function codeSim(prediction: string, truth: string): number {
  const line = prediction.replace(/^\n+/, '').split('\n').find((l) => !l.includes('`') && !l.includes('#') && !l.includes('//')) ?? '';
  return fuzzRatio(line, truth) / 100;
}

export function fuzzRatio(a: string, b: string): number {
  if (a === b) return 100;
  if (a.length === 0 || b.length === 0) return 0;
  const x = [...a];
  const y = [...b];
  let prev = new Int32Array(y.length + 1);
  for (let i = 1; i <= x.length; i++) {
    const row = new Int32Array(y.length + 1);
    for (let j = 1; j <= y.length; j++) row[j] = x[i - 1] === y[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
    prev = row;
  }
  const lcs = prev[y.length];
  return roundHalfEven((100 * 2 * lcs) / (x.length + y.length));
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5 || (d === 0.5 && f % 2 !== 0)) return f + 1;
  return f;
}
