/**
 * An eval pool worker (see pool.ts): opens the model folder and tokenizer, loads the model
 * at its first unit and keeps it, and runs the units it is sent with their tokens.
 */
import type { EvalConfig } from '../config/index.js';
import { openRun, runUnits, type EvalJob, type PreparedRun } from './eval.js';
import { serveJobs } from './pool.js';
import type { EvalRecord } from './records.js';

let run: PreparedRun | null = null;

await serveJobs<EvalConfig, EvalJob, EvalRecord>(
  (cfg) => {
    run = openRun(cfg);
  },
  async ({ unit, tokens }) => {
    let record: EvalRecord | null = null;
    run!.tokens.set(unit.sample.id, tokens);
    await runUnits(run!, [unit], (r) => (record = r));
    run!.tokens.delete(unit.sample.id);
    return record!;
  },
);
