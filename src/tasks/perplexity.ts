/**
 * Perplexity of a long text under a policy, as Quest evaluates PG19 (and StreamingLLM's
 * eval_long_ppl before it): after a short dense prefix, the text is fed one token at a time,
 * each token's negative log-likelihood taken before it is fed. Windows of the target length
 * are cut from the text in order; perplexity is also reported by position bucket.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../config/index.js';
import { QuestError } from '../errors.js';
import type { Sample, SampleOptions, Task } from './types.js';

export const defaultText = path.join(projectRoot, 'datasets', 'text', 'kjv-heldout.txt');
/** Position buckets per window: the window's fed part cut in this many equal spans. */
export const PPL_BUCKETS = 4;

export const perplexity: Task = {
  name: 'perplexity',
  benchmark: 'perplexity',
  source: 'Quest (Tang et al., 2024) PG19 protocol: token-by-token NLL after a dense prefix',
  metric: 'perplexity (lower is better)',
  maxNewTokens: 0,
  samples(opts: SampleOptions): Sample[] {
    const file = opts.textFile ?? defaultText;
    if (!existsSync(file)) throw new QuestError(`--text-file ${file}: no such file`);
    const ids = opts.tokenizer.encode(readFileSync(file, 'utf8'));
    const prefix = opts.pplPrefix ?? 64;
    const out: Sample[] = [];
    for (const L of opts.lengths) {
      if (L <= prefix) throw new QuestError(`--lengths ${L}: not longer than the dense prefix (--ppl-prefix ${prefix})`);
      const windows = Math.min(opts.perLength, Math.floor(ids.length / L));
      if (windows === 0) throw new QuestError(`${file}: ${ids.length} tokens, shorter than one window of ${L}`);
      for (let w = 0; w < windows; w++) {
        const win = ids.slice(w * L, (w + 1) * L);
        out.push({
          id: `perplexity-L${L}-${w}`,
          task: 'perplexity',
          context: '',
          question: '',
          ids: { context: win.slice(0, prefix), question: win.slice(prefix) },
          answers: [],
          meta: { length: L, text: path.resolve(file), prefix, window: w },
        });
      }
    }
    return out;
  },
  // Perplexity is computed from the NLLs by the runner, not from a prediction.
  score: () => 0,
};
