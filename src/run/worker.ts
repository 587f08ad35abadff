/**
 * An eval pool worker (see pool.ts): opens the model folder and tokenizer, loads the model
 * at its first unit and keeps it, and runs the units it is sent with their tokens (one, or a
 * sample's cells that share a prefill), answering with their records and passing on its notes
 * (a shared prefill split to fit the device).
 */
import type { EvalConfig } from '../config/index.js';
import { openRun, runUnits, type EvalJob, type PreparedRun } from './eval.js';
import { serveJobs } from './pool.js';
import type { EvalRecord } from './records.js';

let run: PreparedRun | null = null;

await serveJobs<EvalConfig, EvalJob, EvalRecord[]>(
  (cfg) => {
    run = openRun(cfg);
  },
  async ({ units, tokens }, note) => {
    const records: EvalRecord[] = [];
    run!.tokens.set(units[0].sample.id, tokens);
    await runUnits(run!, units, (r) => records.push(r), note);
    run!.tokens.delete(units[0].sample.id);
    return records;
  },
);
