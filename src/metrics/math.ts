/**
 * Answers of long-generation math tasks. MATH: the last \boxed{} of the response compared with
 * the reference under lm-evaluation-harness's Hendrycks MATH normalisation, followed as
 * lm-eval 0.4.13 has it in lm_eval/tasks/hendrycks_math/utils.py (last_boxed_only_string,
 * remove_boxed, is_equiv, strip_string and its helpers), Python exceptions included: where
 * Python raises, this throws PyError and is_equiv falls back to comparing the raw strings.
 * AIME: the last \boxed{}'s content as an integer against the reference integer.
 */

/** What Python raises in the original (AssertionError, IndexError, ValueError). */
class PyError extends Error {}

function pyAssert(cond: boolean): void {
  if (!cond) throw new PyError('assert');
}

/** s[i] as Python indexes a str (by code point): out of range raises. */
function at(s: string, i: number): string {
  const cps = Array.from(s);
  if (i >= cps.length || i < -cps.length) throw new PyError('index');
  return cps.at(i)!;
}

/** Python's int() of a str: optional sign, digits with single underscores, surrounding whitespace. */
function pyInt(s: string): bigint {
  const m = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/.exec(s);
  if (!m) throw new PyError('ValueError');
  return BigInt(m[1] + m[2].replaceAll('_', ''));
}

/** Python's str.split(sep) by a non-empty separator. */
const split = (s: string, sep: string) => s.split(sep);

export function lastBoxedOnlyString(s: string): string | null {
  let idx = s.lastIndexOf('\\boxed');
  if (s.includes('\\boxed ')) return '\\boxed ' + split(split(s, '\\boxed ').at(-1)!, '$')[0];
  if (idx < 0) {
    idx = s.lastIndexOf('\\fbox');
    if (idx < 0) return null;
  }
  let open = 0;
  for (let i = idx; i < s.length; i++) {
    if (s[i] === '{') open++;
    if (s[i] === '}') {
      open--;
      if (open === 0) return s.slice(idx, i + 1);
    }
  }
  return null;
}

export function removeBoxed(s: string): string {
  if (s.includes('\\boxed ')) {
    pyAssert(s.startsWith('\\boxed '));
    return s.slice('\\boxed '.length);
  }
  pyAssert(s.startsWith('\\boxed{'));
  pyAssert(at(s, -1) === '}');
  return s.slice('\\boxed{'.length, -1);
}

function fixFracs(s: string): string {
  const parts = split(s, '\\frac');
  let out = parts[0];
  for (const sub of parts.slice(1)) {
    out += '\\frac';
    if (at(sub, 0) === '{') {
      out += sub;
      continue;
    }
    const cps = Array.from(sub);
    if (cps.length < 2) return s;
    const [a, b] = cps;
    const post = cps.slice(2).join('');
    out += b !== '{' ? `{${a}}{${b}}${post}` : `{${a}}${b}${post}`;
  }
  return out;
}

function fixASlashB(s: string): string {
  const parts = split(s, '/');
  if (parts.length !== 2) return s;
  // int() raising ValueError is not the AssertionError the original catches: it reaches is_equiv.
  const a = pyInt(parts[0]);
  const b = pyInt(parts[1]);
  if (s !== `${a}/${b}`) return s;
  return `\\frac{${a}}{${b}}`;
}

function removeRightUnits(s: string): string {
  if (!s.includes('\\text{ ')) return s;
  const parts = split(s, '\\text{ ');
  pyAssert(parts.length === 2);
  return parts[0];
}

function fixSqrt(s: string): string {
  if (!s.includes('\\sqrt')) return s;
  const parts = split(s, '\\sqrt');
  let out = parts[0];
  for (const p of parts.slice(1)) out += at(p, 0) !== '{' ? `\\sqrt{${at(p, 0)}}${Array.from(p).slice(1).join('')}` : `\\sqrt${p}`;
  return out;
}

export function stripString(input: string): string {
  let s = input.replaceAll('\n', '').replaceAll('\\!', '').replaceAll('\\\\', '\\');
  s = s.replaceAll('tfrac', 'frac').replaceAll('dfrac', 'frac');
  s = s.replaceAll('\\left', '').replaceAll('\\right', '');
  s = s.replaceAll('^{\\circ}', '').replaceAll('^\\circ', '');
  s = s.replaceAll('\\$', '');
  s = removeRightUnits(s);
  // The original's "\\%" and "\%" are the same Python string.
  s = s.replaceAll('\\%', '');
  s = s.replaceAll(' .', ' 0.').replaceAll('{.', '{0.');
  if (s.length === 0) return s;
  if (s[0] === '.') s = '0' + s;
  const eq = split(s, '=');
  if (eq.length === 2 && Array.from(eq[0]).length <= 2) s = eq[1];
  s = fixSqrt(s);
  s = s.replaceAll(' ', '');
  s = fixFracs(s);
  if (s === '0.5') s = '\\frac{1}{2}';
  return fixASlashB(s);
}

export function isEquiv(a: string | null, b: string | null): boolean {
  if (a === null && b === null) return true;
  if (a === null || b === null) return false;
  try {
    return stripString(a) === stripString(b);
  } catch (err) {
    if (!(err instanceof PyError)) throw err;
    return a === b;
  }
}

/** remove_boxed(last_boxed_only_string(response)), null where there is none or it is malformed (an assertion in the original). */
export function boxedAnswer(response: string): string | null {
  const boxed = lastBoxedOnlyString(response);
  if (boxed === null) return null;
  try {
    return removeBoxed(boxed);
  } catch (err) {
    if (!(err instanceof PyError)) throw err;
    return null;
  }
}

/** MATH: 1 when the last boxed answer is equivalent to the reference under is_equiv. */
export function mathScore(response: string, answer: string): number {
  const got = boxedAnswer(response);
  return got !== null && isEquiv(got, answer) ? 1 : 0;
}

/** AIME: 1 when the last boxed answer is the reference integer (leading zeros allowed: "033" is 33). */
export function aimeScore(response: string, answer: string): number {
  const got = boxedAnswer(response);
  const int = (s: string) => (/^\s*\d+\s*$/.test(s) ? Number(s) : NaN);
  return got !== null && int(got) === int(answer) ? 1 : 0;
}
