/**
 * Python 3's str and re semantics, which the original metrics run on (pinned: CPython 3.11,
 * Unicode 14.0). JavaScript differs: its \s adds U+FEFF and lacks U+001C-U+001F and U+0085,
 * its \d and \b are ASCII-only, and it indexes UTF-16 code units where Python indexes code points.
 * test/fidelity-metrics.test.ts checks every code point against Python's own tables; they
 * differ only on code points Unicode 14.0 leaves unassigned (Node follows a newer Unicode).
 */

/** str.isspace(): general category Zs or bidi class WS, B or S (so U+001C-U+001F and U+0085, not U+FEFF). */
const SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACE_RUNS = new RegExp(`[${SPACE}]+`, 'u');
const STRIP = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'gu');
/** re's \w on str: str.isalnum() (letters and every numeric character) or "_". */
export const PY_WORD = '[\\p{L}\\p{N}_]';
/** re's \d on str: any decimal digit (general category Nd), not only 0-9. */
const DIGIT_RUNS = /\p{Nd}+/gu;

/** str.split() with no arguments: runs of whitespace separate, empty pieces dropped. */
export function pySplit(s: string): string[] {
  return s.split(SPACE_RUNS).filter((w) => w.length > 0);
}

/** str.strip() with no arguments. */
export const pyStrip = (s: string): string => s.replace(STRIP, '');

/** str.lower(): the full Unicode lower-case mapping with final sigma, as String.toLowerCase. */
export const pyLower = (s: string): string => s.toLowerCase();

/** The code points of s, as Python's len(), indexing and iteration see them. */
export const codePoints = (s: string): string[] => [...s];

/** re.findall(r"\d+", s). */
export const pyDigitRuns = (s: string): string[] => s.match(DIGIT_RUNS) ?? [];

/**
 * int() of a run of decimal digits, each Nd digit by its value (Nd digits come in aligned runs
 * of 0-9); past 2**53 it is inexact, but then it equals no integer below that, as in Python.
 */
export function pyDigitsValue(run: string): number {
  let n = 0;
  for (const c of run) {
    let start = c.codePointAt(0)!;
    while (/\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--;
    n = n * 10 + ((c.codePointAt(0)! - start) % 10);
  }
  return n;
}

/** round(): halves go to the even neighbour. */
export function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5 || (d === 0.5 && f % 2 !== 0)) return f + 1;
  return f;
}
