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
