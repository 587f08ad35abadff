// MATH answer extraction and normalisation against lm-evaluation-harness's own functions
// (test/fidelity/math/math.json: made outside the project by running lm-eval 0.4.13's
// hendrycks_math/utils.py; its note says how), and AIME's integer match on worked examples.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aimeScore, lastBoxedOnlyString, mathScore, removeBoxed, stripString } from '../src/metrics/math.js';
import { repo } from './helpers.js';

interface Outcome {
  value?: string | null;
  raises?: string;
}
interface Case {
  response: string;
  answer: string;
  last_boxed_only_string: string | null;
  remove_boxed: Outcome;
  strip_string: Outcome | null;
  is_equiv: boolean;
}

const cases = (JSON.parse(readFileSync(path.join(repo, 'test', 'fidelity', 'math', 'math.json'), 'utf8')) as { cases: Case[] }).cases;

/** The value, or "raises" where the function throws (the original raised). */
const outcome = (f: () => string): Outcome => {
  try {
    return { value: f() };
  } catch {
    return { raises: 'raises' };
  }
};
const expected = (o: Outcome): Outcome => (o.raises ? { raises: 'raises' } : { value: o.value });

describe('MATH answers as lm-eval 0.4.13 extracts and normalises them', () => {
  it.each(cases.map((c) => [c.response, c]))('%j', (_, c) => {
    expect(lastBoxedOnlyString(c.response)).toBe(c.last_boxed_only_string);
    if (c.last_boxed_only_string !== null) expect(outcome(() => removeBoxed(c.last_boxed_only_string!))).toEqual(expected(c.remove_boxed));
    if (c.strip_string !== null) expect(outcome(() => stripString(c.remove_boxed.value!))).toEqual(expected(c.strip_string));
    expect(mathScore(c.response, c.answer)).toBe(c.is_equiv ? 1 : 0);
  });
});

describe('AIME integer match', () => {
  it.each([
    ['the answer is \\boxed{33}', '33', 1],
    ['\\boxed{033}', '33', 1],
    ['\\boxed{33.0}', '33', 0],
    ['\\boxed{12} then \\boxed{204}', '204', 1],
    ['204', '204', 0],
    ['\\boxed{x=204}', '204', 0],
  ])('%j against %s', (response, answer, score) => {
    expect(aimeScore(response, answer)).toBe(score);
  });
});
