/** Scoring functions shared by the tasks. */

/** The first run of digits in `text`, as landmark-attention's and Quest's passkey scorers read it. */
export function firstInteger(text: string): number | null {
  const m = /\d+/.exec(text);
  return m ? Number.parseInt(m[0], 10) : null;
}

/** 1 when the first integer of the prediction equals one of the answers. */
export function firstIntegerMatch(prediction: string, answers: string[]): number {
  const got = firstInteger(prediction);
  return got !== null && answers.some((a) => Number.parseInt(a, 10) === got) ? 1 : 0;
}

/** RULER's postprocess_pred: strip, control characters to newlines, strip again. */
export function rulerPostprocess(prediction: string): string {
  return prediction.trim().replace(/[\x00-\x1f]/g, '\n').trim();
}

/** RULER's string_match_all: the share of references found (case-insensitive) in the prediction. */
export function stringMatchAll(prediction: string, refs: string[]): number {
  const p = rulerPostprocess(prediction).toLowerCase();
  return refs.filter((r) => p.includes(r.toLowerCase())).length / refs.length;
}

/** RULER's string_match_part: 1 when any reference is found (case-insensitive) in the prediction. */
export function stringMatchPart(prediction: string, refs: string[]): number {
  const p = rulerPostprocess(prediction).toLowerCase();
  return refs.some((r) => p.includes(r.toLowerCase())) ? 1 : 0;
}
