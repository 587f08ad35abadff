/** Scoring functions shared by the tasks, on Python 3's str and re semantics (python.ts). */
import { pyDigitRuns, pyDigitsValue, pyLower, pyStrip } from './python.js';

/**
 * int(re.search(r"\d+", text).group()), as Quest's passkey scorer reads the answer
 * (mit-han-lab/Quest evaluation/passkey/passkey.py test_model): any Unicode digits; null for none.
 */
export function firstInteger(text: string): number | null {
  const [run] = pyDigitRuns(text);
  return run === undefined ? null : pyDigitsValue(run);
}

/** 1 when the first integer of the prediction equals one of the answers. */
export function firstIntegerMatch(prediction: string, answers: string[]): number {
  const got = firstInteger(prediction);
  return got !== null && answers.some((a) => firstInteger(a) === got) ? 1 : 0;
}

// NVIDIA/RULER scripts/eval/evaluate.py and scripts/eval/synthetic/constants.py at commit
// c3f5e3b4 (both last changed in 4f6507ee, 2024-04-25).

/** postprocess_pred: strip, control characters (\x00-\x1f) to newlines, strip again. */
export function rulerPostprocess(prediction: string): string {
  return pyStrip(pyStrip(prediction).replace(/[\x00-\x1f]/g, '\n'));
}

/** string_match_all for one sample: the share of references found (case-insensitive) in the prediction. */
export function stringMatchAll(prediction: string, refs: string[]): number {
  const p = pyLower(rulerPostprocess(prediction));
  return refs.filter((r) => p.includes(pyLower(r))).length / refs.length;
}

/** string_match_part for one sample: 1 when any reference is found (case-insensitive) in the prediction. */
export function stringMatchPart(prediction: string, refs: string[]): number {
  const p = pyLower(rulerPostprocess(prediction));
  return refs.some((r) => p.includes(pyLower(r))) ? 1 : 0;
}
