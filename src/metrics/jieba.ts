/**
 * Python jieba 0.42.1's jieba.cut(s, cut_all=False) (accurate mode, HMM on), as LongBench's
 * metrics call it: jieba/__init__.py's cut, get_DAG, calc and __cut_DAG and
 * jieba/finalseg/__init__.py's cut, written out here. @node-rs/jieba (jieba-rs) splits blocks
 * with other character classes and its HMM pass with another regex, so it is used only for the
 * Viterbi of finalseg.__cut, on runs of U+4E00-U+9FD5, where it agrees with Python.
 */
import { createRequire } from 'node:module';
import { QuestError, errorMessage } from '../errors.js';

// jieba/__init__.py re_han_default: what the dictionary pass sees; everything else is cut per character.
const HAN_DEFAULT = /[\u4E00-\u9FD5a-zA-Z0-9+#&._%-]+/y;
// jieba/finalseg/__init__.py re_han and re_skip (its \d can only meet ASCII digits here).
const FINALSEG_HAN = /[\u4E00-\u9FD5]+/g;
const FINALSEG_SKIP = /[a-zA-Z0-9]+(?:\.[0-9]+)?%?/g;

interface Model {
  freq: Map<string, number>;
  logTotal: number;
  viterbi(run: string): string[];
}
let model: Model | undefined;

/** jieba's dictionary as gen_pfdict reads it: each word's frequency, each prefix at 0 unless a word. */
function load(): Model {
  const require = createRequire(import.meta.url);
  let Jieba: { new (): { cut(s: string, hmm: boolean): string[] } };
  let dict: Uint8Array;
  try {
    ({ Jieba } = require('@node-rs/jieba'));
    ({ dict } = require('@node-rs/jieba/dict'));
  } catch (err) {
    // The GPU machine's bundle (tools/gpu-bundle.sh) leaves the 11 MB dictionary out.
    throw new QuestError(`scoring Chinese text needs @node-rs/jieba, which this installation lacks (${errorMessage(err)}); run npm install`);
  }
  const freq = new Map<string, number>();
  let total = 0;
  for (const line of Buffer.from(dict).toString('utf8').split('\n')) {
    const [word, f] = line.trim().split(' ');
    if (!word) continue;
    freq.set(word, Number(f));
    total += Number(f);
    for (let i = 1; i < word.length; i++) if (!freq.has(word.slice(0, i))) freq.set(word.slice(0, i), 0);
  }
  // Python's dict.txt lists "B超" twice (lines 2 and 17) and its total counts both; this copy lists it once.
  total += freq.get('B超') ?? 0;
  // With an empty dictionary every character is its own DAG node, so jieba-rs runs its HMM on the whole run.
  const hmm = new Jieba();
  return { freq, logTotal: Math.log(total), viterbi: (run) => hmm.cut(run, true) };
}

/** get_DAG + calc: the best route's next word end for each start, ties to the longer word. */
function route(m: Model, s: string): Int32Array {
  const n = s.length;
  const score = new Float64Array(n + 1);
  const next = new Int32Array(n);
  for (let k = n - 1; k >= 0; k--) {
    const ends: number[] = [];
    for (let i = k; i < n; i++) {
      const f = m.freq.get(s.slice(k, i + 1));
      if (f === undefined) break;
      if (f > 0) ends.push(i);
    }
    if (ends.length === 0) ends.push(k);
    let best = -Infinity;
    for (const x of ends) {
      const v = Math.log(m.freq.get(s.slice(k, x + 1)) || 1) - m.logTotal + score[x + 1];
      if (v >= best) {
        best = v;
        next[k] = x;
      }
    }
    score[k] = best;
  }
  return next;
}

/** finalseg.cut: the HMM on Chinese runs; letters and digits (with a decimal part and %) kept whole. */
function finalseg(m: Model, buf: string, out: string[]): void {
  let last = 0;
  for (const h of buf.matchAll(FINALSEG_HAN)) {
    skipSplit(buf.slice(last, h.index), out);
    out.push(...m.viterbi(h[0]));
    last = h.index + h[0].length;
  }
  skipSplit(buf.slice(last), out);
}

/** re_skip.split(blk) without its empty pieces. */
function skipSplit(blk: string, out: string[]): void {
  let last = 0;
  for (const x of blk.matchAll(FINALSEG_SKIP)) {
    if (x.index > last) out.push(blk.slice(last, x.index));
    out.push(x[0]);
    last = x.index + x[0].length;
  }
  if (blk.length > last) out.push(blk.slice(last));
}

/** __cut_DAG: the route's words; runs of single characters go to the HMM unless they are a word. */
function cutDag(m: Model, s: string, out: string[]): void {
  const next = route(m, s);
  let buf = '';
  const flush = () => {
    if (buf.length === 1) out.push(buf);
    else if (buf.length > 1) {
      if (!m.freq.get(buf)) finalseg(m, buf, out);
      else out.push(...buf);
    }
    buf = '';
  };
  for (let x = 0; x < s.length; ) {
    const y = next[x] + 1;
    if (y - x === 1) buf += s[x];
    else {
      flush();
      out.push(s.slice(x, y));
    }
    x = y;
  }
  flush();
}

/** jieba.cut(s, cut_all=False): dictionary blocks cut by route and HMM; other text per code point, "\r\n" whole. */
export function jiebaCut(s: string): string[] {
  model ??= load();
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    HAN_DEFAULT.lastIndex = i;
    const blk = HAN_DEFAULT.exec(s);
    if (blk) {
      cutDag(model, blk[0], out);
      i += blk[0].length;
    } else if (s.startsWith('\r\n', i)) {
      out.push('\r\n');
      i += 2;
    } else {
      const c = String.fromCodePoint(s.codePointAt(i)!);
      out.push(c);
      i += c.length;
    }
  }
  return out;
}
