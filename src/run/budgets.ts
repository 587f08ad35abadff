/**
 * Budgets in tokens, or as a fraction of each sample's prompt ("0.05c": 5% of its context
 * and question tokens), resolved per sample; records keep both the spec and the tokens.
 */
import { QuestError } from '../errors.js';

/** Tokens, or `<fraction>c`. */
export type Budget = number | string;

const FRACTION = /^\s*(\d*\.?\d+)c\s*$/;

/** The fraction a `<f>c` budget names, or null for a token count. */
export function budgetFraction(b: Budget): number | null {
  if (typeof b === 'number') return null;
  const m = FRACTION.exec(b);
  return m ? Number(m[1]) : null;
}

/** One --budgets entry: a positive integer or a fraction in (0, 1] followed by c. */
export function parseBudget(flag: string, v: string): Budget {
  const t = v.trim();
  if (/^\d+$/.test(t) && Number(t) > 0) return Number(t);
  const f = budgetFraction(t);
  if (f !== null && f > 0 && f <= 1) return `${f}c`;
  throw new QuestError(`${flag}: "${v}" is not a positive integer or a fraction of the context in (0, 1] such as 0.05c`);
}

/** The tokens a budget reads for a prompt of `promptTokens`: a fraction is rounded down. */
export function resolveBudget(b: Budget, promptTokens: number): number {
  const f = budgetFraction(b);
  return f === null ? (b as number) : Math.floor(f * promptTokens);
}
