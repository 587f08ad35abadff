/**
 * difflib.SequenceMatcher(None, a, b).ratio() of CPython 3.11's Lib/difflib.py, on code points:
 * b2j with autojunk (in a b of 200 or more items, an item found more than len(b) // 100 + 1
 * times is never a match seed, though matches may still extend over it), find_longest_match
 * (the earliest longest block) and get_matching_blocks' recursion on both sides of it.
 */
import { codePoints } from './python.js';

/** Item positions in b, less the "popular" items __chain_b drops. */
function chainB(b: string[]): Map<string, number[]> {
  const b2j = new Map<string, number[]>();
  b.forEach((elt, i) => {
    const list = b2j.get(elt);
    if (list) list.push(i);
    else b2j.set(elt, [i]);
  });
  if (b.length >= 200) {
    const ntest = Math.floor(b.length / 100) + 1;
    for (const [elt, idxs] of b2j) if (idxs.length > ntest) b2j.delete(elt);
  }
  return b2j;
}

/** find_longest_match(alo, ahi, blo, bhi) with no junk function: [i, j, size]. */
function longestMatch(a: string[], b: string[], b2j: Map<string, number[]>, alo: number, ahi: number, blo: number, bhi: number): [number, number, number] {
  let besti = alo;
  let bestj = blo;
  let bestsize = 0;
  let j2len = new Map<number, number>();
  for (let i = alo; i < ahi; i++) {
    const newj2len = new Map<number, number>();
    for (const j of b2j.get(a[i]) ?? []) {
      if (j < blo) continue;
      if (j >= bhi) break;
      const k = (j2len.get(j - 1) ?? 0) + 1;
      newj2len.set(j, k);
      if (k > bestsize) {
        besti = i - k + 1;
        bestj = j - k + 1;
        bestsize = k;
      }
    }
    j2len = newj2len;
  }
  // Popular items are not junk: the block grows over equal neighbours of any kind.
  while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) {
    besti--;
    bestj--;
    bestsize++;
  }
  while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) bestsize++;
  return [besti, bestj, bestsize];
}

/** The total size of get_matching_blocks(). */
export function matchingCharacters(a: string[], b: string[]): number {
  const b2j = chainB(b);
  const queue: [number, number, number, number][] = [[0, a.length, 0, b.length]];
  let matches = 0;
  while (queue.length > 0) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const [i, j, k] = longestMatch(a, b, b2j, alo, ahi, blo, bhi);
    if (k === 0) continue;
    matches += k;
    if (alo < i && blo < j) queue.push([alo, i, blo, j]);
    if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
  }
  return matches;
}

/** SequenceMatcher(None, a, b).ratio(): _calculate_ratio(matches, len(a) + len(b)). */
export function sequenceMatcherRatio(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  const length = x.length + y.length;
  return length ? (2.0 * matchingCharacters(x, y)) / length : 1.0;
}
