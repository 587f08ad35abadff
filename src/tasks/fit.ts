/** Sizing a generated prompt to a token budget of the model's own tokenizer. */

/**
 * The largest n in [lo, hi] with fits(n) true, assuming fits is true up to some n and false
 * after it (a longer haystack never has fewer tokens). Returns lo - 1 when nothing fits.
 */
export function largestFitting(lo: number, hi: number, fits: (n: number) => boolean): number {
  if (!fits(lo)) return lo - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
