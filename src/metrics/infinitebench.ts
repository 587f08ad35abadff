/**
 * InfiniteBench's metrics: OpenBMB/InfiniteBench src/compute_scores.py at commit
 * 88b3daa6989da2fbe0077170d7a3c84c25d5ae58, on Python 3's str semantics (python.ts). En.Sum's
 * ROUGE-Lsum is Hugging Face evaluate's "rouge" (use_stemmer off), that is rouge-score 0.1.2's
 * rouge_scorer.py: tokenize.py's tokens, sentences split at newlines, summary-level union LCS.
 */
import { qaF1 } from './longbench.js';
import { pyDigitsValue, pyLower, pySplit, pyStrip } from './python.js';

/** first_int_match: the first run of ASCII digits (re.split("[^0-9]", ...)), or "". */
export function firstIntMatch(prediction: string): string {
  return prediction.split(/[^0-9]/).find((x) => x !== '') ?? '';
}

/** Replaces each of `chars` by a space, as the scorers' replace loops do. */
const blank = (s: string, chars: string[]) => chars.reduce((t, c) => t.replaceAll(c, ' '), s);
const RETRIEVAL_CHARS = ['\n', ':', '"', "'", '.', ',', '?', '!', '{', '}'];

/** get_score_one_passkey and _number_string. */
export const firstIntScore = (pred: string, label: string) => +(label === firstIntMatch(pred));

/** get_score_one_kv_retrieval: the label is one of the words. */
export const kvRetrievalScore = (pred: string, label: string) => +pySplit(blank(pred, RETRIEVAL_CHARS)).includes(label);

/** get_score_one_longdialogue_qa_eng: label[0] among the upper-cased words. */
export const dialogueScore = (pred: string, labels: string[]) =>
  +pySplit(blank(pyStrip(pred), RETRIEVAL_CHARS)).map((w) => w.toUpperCase()).includes(labels[0]);

/** `while "  " in pred: pred = pred.replace("  ", " ")`. */
const squeeze = (s: string) => {
  while (s.includes('  ')) s = s.replaceAll('  ', ' ');
  return s;
};

/** The text after `prefix` and one more character, or null where the prediction ends there (the scorers' prefix loops). */
function after(pred: string, prefix: string): string | null | undefined {
  const idx = pred.indexOf(prefix);
  if (idx === -1) return undefined;
  if ([...pred].length < [...pred.slice(0, idx)].length + [...prefix].length + 1) return null;
  return [...pred].slice([...pred.slice(0, idx)].length + [...prefix].length + 1).join('');
}

/** get_score_one_longbook_choice_eng; `labels` is [option text, letter]. */
export function choiceScore(prediction: string, labels: string[]): number {
  let pred = pyStrip(prediction);
  if (pred === '') return 0;
  const first = [...pred][0];
  if ('ABCD'.includes(first)) return +labels.includes(first);
  if (labels.includes(pred)) return 1;
  pred = squeeze(blank(pred, ['\n', '"', "'", '.', ',', '?', '!', '{', '}']));
  for (const prefix of ['answer is:', 'answer:', 'answer is', 'option is']) {
    const rest = after(pred, prefix);
    if (rest === undefined) continue;
    if (rest === null) return 0;
    return +labels.some((s) => rest.startsWith(s));
  }
  // Python's `word in "ABCD"` is a substring test: "AB" and "" count too.
  const word = pySplit(pred).find((w) => 'ABCD'.includes(w));
  return word === undefined ? 0 : +labels.includes(word);
}

/** get_score_one_code_debug; `labels` is [function name, letter]. */
export function codeDebugScore(prediction: string, labels: string[]): number {
  let pred = pyStrip(prediction);
  const [fn, letter] = labels;
  const two = [...pred].slice(0, 2).join('');
  if (two === `${letter}.` || two === `${letter}:`) return 1;
  pred = squeeze(blank(pyStrip(pred), ['\n', '`', "'", '"', '-', '*', 'Option', 'option']));
  for (const prefix of ['answer is:', 'is:', 'answer:', 'correct option is:']) {
    const rest = after(pred, prefix);
    if (rest === undefined) continue;
    if (rest === null) return 0;
    return +[letter, fn].some((s) => rest.startsWith(s));
  }
  return 0;
}

/**
 * get_score_one_math_find: the first number (re.search(r"\d+\.\d+|\d+"), any Unicode digits)
 * compared as int(...) with an integer label or float(...) with a float one. int() of "3.5"
 * raises in the original (ending the whole scoring run); that prediction scores 0 here. JSON
 * does not tell 88.0 from 88 here: such a label is read as the integer.
 */
export function mathFindScore(prediction: string, label: number): number {
  const m = /\p{Nd}+\.\p{Nd}+|\p{Nd}+/u.exec(prediction);
  if (!m) return 0;
  const ascii = [...m[0]].map((c) => (c === '.' ? c : String(pyDigitsValue(c)))).join('');
  if (Number.isInteger(label)) return /^\d+$/.test(ascii) && Number(ascii) === label ? 1 : 0;
  return Number(ascii) === label ? 1 : 0;
}

/** qa_f1_score: the best token F1 over the labels (the same normalisation as LongBench's). */
export const infQaF1 = (pred: string, labels: string[]) => Math.max(0, ...labels.map((l) => qaF1(pred, l)));

/** rouge-score's tokenize: lower case, runs of anything but a-z0-9 become spaces, split. */
function rougeTokens(text: string): string[] {
  return pyLower(text).replace(/[^a-z0-9]+/g, ' ').split(/\s+/).filter((t) => /^[a-z0-9]+$/.test(t));
}

/** Indices into ref of one LCS of ref and can: _lcs_table then _backtrack_norec. */
function lcsIndices(ref: string[], can: string[]): number[] {
  const t = Array.from({ length: ref.length + 1 }, () => new Int32Array(can.length + 1));
  for (let i = 1; i <= ref.length; i++)
    for (let j = 1; j <= can.length; j++) t[i][j] = ref[i - 1] === can[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
  const out: number[] = [];
  let [i, j] = [ref.length, can.length];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.unshift(i - 1);
      i--;
      j--;
    } else if (t[i][j - 1] > t[i - 1][j]) j--;
    else i--;
  }
  return out;
}

/** ROUGE-Lsum's F-measure (evaluate's rougeLsum with use_aggregator=False, one pair). */
export function rougeLsum(prediction: string, reference: string): number {
  const sents = (s: string) => s.split('\n').filter((x) => x.length > 0).map(rougeTokens);
  const ref = sents(reference);
  const can = sents(prediction);
  if (!ref.length || !can.length) return 0;
  const m = ref.reduce((a, s) => a + s.length, 0);
  const n = can.reduce((a, s) => a + s.length, 0);
  if (!m || !n) return 0;
  const count = (ss: string[][]) => {
    const c = new Map<string, number>();
    for (const s of ss) for (const t of s) c.set(t, (c.get(t) ?? 0) + 1);
    return c;
  };
  const [cr, cc] = [count(ref), count(can)];
  let hits = 0;
  for (const r of ref) {
    const union = [...new Set(can.flatMap((c) => lcsIndices(r, c)))].sort((a, b) => a - b);
    for (const t of union.map((i) => r[i]))
      if ((cc.get(t) ?? 0) > 0 && (cr.get(t) ?? 0) > 0) {
        hits++;
        cc.set(t, cc.get(t)! - 1);
        cr.set(t, cr.get(t)! - 1);
      }
  }
  const [recall, precision] = [hits / m, hits / n];
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}
