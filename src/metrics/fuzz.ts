/**
 * fuzzywuzzy 0.18.0's fuzz.ratio. Its SequenceMatcher is python-Levenshtein's when that is
 * installed and difflib's otherwise; LongBench's requirements.txt installs fuzzywuzzy alone,
 * so difflib is the original and the default.
 */
import { sequenceMatcherRatio } from './difflib.js';
import { codePoints, pyRound } from './python.js';

export const CODE_SIM_BACKENDS = ['difflib', 'levenshtein'] as const;
export type CodeSimBackend = (typeof CODE_SIM_BACKENDS)[number];
export const CODE_SIM_DEFAULT: CodeSimBackend = 'difflib';

/**
 * python-Levenshtein 0.12.2's ratio(): (lensum - distance) / lensum, where the distance
 * counts a substitution as 2, i.e. lensum - 2 * (longest common subsequence).
 */
export function levenshteinRatio(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  const lensum = x.length + y.length;
  if (lensum === 0) return 1.0;
  let prev = new Int32Array(y.length + 1);
  for (let i = 1; i <= x.length; i++) {
    const row = new Int32Array(y.length + 1);
    for (let j = 1; j <= y.length; j++) row[j] = x[i - 1] === y[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
    prev = row;
  }
  const distance = lensum - 2 * prev[y.length];
  return (lensum - distance) / lensum;
}

/** fuzz.ratio(s1, s2): 100 for equal strings, 0 when one is empty, else utils.intr(100 * ratio). */
export function fuzzRatio(s1: string, s2: string, backend: CodeSimBackend = CODE_SIM_DEFAULT): number {
  if (s1 === s2) return 100;
  if (s1.length === 0 || s2.length === 0) return 0;
  const ratio = backend === 'difflib' ? sequenceMatcherRatio(s1, s2) : levenshteinRatio(s1, s2);
  return pyRound(100 * ratio);
}
