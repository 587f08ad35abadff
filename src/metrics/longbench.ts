/**
 * LongBench's metrics: THUDM/LongBench LongBench/metrics.py (commit 2e00731f, 2025-01-15;
 * the file last changed in c5ea10bc), with ROUGE-L as the `rouge` package 1.0.1 (pltrdy/rouge,
 * commit 657d4d2f) computes it, jieba 0.42.1 for Chinese and fuzzywuzzy 0.18.0 for code, all
 * on Python 3's str and re semantics (python.ts).
 */
import { QuestError } from '../errors.js';
import { CODE_SIM_DEFAULT, fuzzRatio, type CodeSimBackend } from './fuzz.js';
import { jiebaCut } from './jieba.js';
import { PY_WORD, codePoints, pyDigitRuns, pyLower, pySplit } from './python.js';

// code_sim_score's fuzz.ratio, beside the metric that uses it.
export { fuzzRatio };

// Python's string.punctuation, and normalize_zh_answer's cn_punctuation added to it.
const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const ZH_PUNCT = new Set([...PUNCT, ...'！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.']);
// re.sub(r"\b(a|an|the)\b", " ", text) with Python's Unicode word characters.
const ARTICLES = new RegExp(`(?<!${PY_WORD})(?:a|an|the)(?!${PY_WORD})`, 'gu');

const removePunct = (s: string, punct: Set<string>) => codePoints(s).filter((c) => !punct.has(c)).join('');

/** normalize_answer: lower case, no punctuation, then no articles, single spaces. */
export function normalizeAnswer(s: string): string {
  return pySplit(removePunct(pyLower(s), PUNCT).replace(ARTICLES, ' ')).join(' ');
}

/** normalize_zh_answer: lower case, no punctuation (ASCII and Chinese), no whitespace. */
export function normalizeZhAnswer(s: string): string {
  return pySplit(removePunct(pyLower(s), ZH_PUNCT)).join('');
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
  return f1(pySplit(normalizeAnswer(prediction)), pySplit(normalizeAnswer(truth)));
}

export function qaF1Zh(prediction: string, truth: string): number {
  const toks = (s: string) => jiebaCut(s).map(normalizeZhAnswer).filter((t) => t.length > 0);
  return f1(toks(prediction), toks(truth));
}

// rouge_score.py's _recon recurses once per step of its LCS walk; past sys.getrecursionlimit()
// (1000) Python raises RecursionError, which LongBench's rouge_score catches as a score of 0.
const PY_RECURSION_LIMIT = 1000;
// Frames below the first _recon when LongBench's eval.py scores: <module>, scorer, rouge_score,
// get_scores, _get_avg_scores, the metric's lambda, rouge_l_summary_level, _union_lcs, _recon_lcs
// (rouge_zh_score adds one). Measured on Python 3.11: test/fidelity/metrics/README.md.
const EVAL_PY_FRAMES = 9;

/** rouge's _recon_lcs(x, y): one longest common subsequence, and the _recon frames it nests. */
function reconLcs(x: string[], y: string[]): { lcs: string[]; frames: number } {
  const t = Array.from({ length: x.length + 1 }, () => new Int32Array(y.length + 1));
  for (let i = 1; i <= x.length; i++)
    for (let j = 1; j <= y.length; j++) t[i][j] = x[i - 1] === y[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
  const lcs: string[] = [];
  let frames = 1;
  for (let i = x.length, j = y.length; i > 0 && j > 0; frames++) {
    if (x[i - 1] === y[j - 1]) {
      lcs.push(x[i - 1]);
      i--;
      j--;
    } else if (t[i - 1][j] > t[i][j - 1]) i--;
    else j--;
  }
  return { lcs, frames };
}

/**
 * rouge_score: Rouge().get_scores([prediction], [truth], avg=True)["rouge-l"]["f"], 0 where it
 * raises. Sentences split on ".", each re-spaced by str.split(), words split on single spaces;
 * the summary-level union LCS over word *sets* (its Ngrams are exclusive). `callerFrames`: the
 * frames a caller adds below rouge_score (1 for rouge_zh_score), for its recursion limit.
 */
function rouge(prediction: string, truth: string, callerFrames: number): number {
  const sents = (s: string) => s.split('.').filter((x) => x.length > 0).map((x) => pySplit(x).join(' '));
  const hyp = sents(prediction);
  const ref = sents(truth);
  // rouge_n and rouge_l_summary_level raise ValueError on an empty side.
  if (hyp.length === 0 || ref.length === 0) return 0;
  const split = (ss: string[]) => ss.flatMap((s) => s.split(' '));
  const m = new Set(split(ref)).size;
  const n = new Set(split(hyp)).size;
  const union = new Set<string>();
  let llcs = 0;
  for (const r of ref) {
    const before = union.size;
    for (const h of hyp) {
      const { lcs, frames } = reconLcs(r.split(' '), h.split(' '));
      if (EVAL_PY_FRAMES + callerFrames + frames > PY_RECURSION_LIMIT) return 0;
      for (const w of lcs) union.add(w);
    }
    llcs += union.size - before;
  }
  const rLcs = llcs / m;
  const pLcs = llcs / n;
  return 2.0 * ((pLcs * rLcs) / (pLcs + rLcs + 1e-8));
}

export const rougeL = (prediction: string, truth: string) => rouge(prediction, truth, 0);

/** rouge_zh_score: jieba's words joined by spaces, then rouge_score. */
export const rougeZh = (prediction: string, truth: string) => rouge(jiebaCut(prediction).join(' '), jiebaCut(truth).join(' '), 1);

/**
 * classification_score, including its quirks: matches are removed from the list it iterates,
 * and a class inside the true class (but not it) is dropped.
 */
export function classification(prediction: string, truth: string, allClasses: string[]): number {
  const matches = allClasses.filter((c) => prediction.includes(c));
  // Python's `for x in list: list.remove(x)` skips the element after each removal.
  for (let i = 0; i < matches.length; i++) {
    if (truth.includes(matches[i]) && matches[i] !== truth) matches.splice(i, 1);
  }
  return matches.includes(truth) ? 1.0 / matches.length : 0.0;
}

/** The share of the prediction's digit runs (Unicode digits, compared as text) equal to `want`. */
function numberShare(prediction: string, want: string): number {
  const numbers = pyDigitRuns(prediction);
  return numbers.length === 0 ? 0.0 : numbers.filter((x) => x === want).length / numbers.length;
}

/** re.findall(pattern, truth)[0]: the paragraph number, whose absence makes Python raise IndexError. */
function referenceId(metric: string, pattern: RegExp, form: string, truth: string): string {
  const m = pattern.exec(truth);
  if (!m) throw new QuestError(`${metric}: the reference ${JSON.stringify(truth)} has no "${form}" (N in digits), which LongBench's metrics.py requires`);
  return m[1];
}

export const countScore = (prediction: string, truth: string) => numberShare(prediction, truth);
export const retrievalScore = (prediction: string, truth: string) => numberShare(prediction, referenceId('retrieval_score', /Paragraph (\p{Nd}+)/u, 'Paragraph N', truth));
export const retrievalZhScore = (prediction: string, truth: string) => numberShare(prediction, referenceId('retrieval_zh_score', /段落(\p{Nd}+)/u, '段落N', truth));

/** code_sim_score: fuzz.ratio of the first line free of `, # and // (after leading newlines) and the reference. */
export function codeSim(prediction: string, truth: string, backend: CodeSimBackend = CODE_SIM_DEFAULT): number {
  const line = prediction.replace(/^\n+/, '').split('\n').find((l) => !l.includes('`') && !l.includes('#') && !l.includes('//')) ?? '';
  return fuzzRatio(line, truth, backend) / 100;
}
