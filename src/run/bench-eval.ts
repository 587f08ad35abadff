/**
 * The eval-throughput benchmark: a whole sweep (every policy x budget cell) on one sample of
 * random tokens, timed as quest eval runs it (one shared prefill, the cells decoded as a
 * batch) and one cell at a time, in the same call, each cell generating the same tokens.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { projectRoot, type BenchConfig } from '../config/index.js';
import { QuestError } from '../errors.js';
import { chooseBackend, loadModel, type NativeModel } from '../engine/index.js';
import { runMetadata, type RunMetadata } from '../report/metadata.js';
import { makeOutputDir, median, writeRows, writeTables, type Column } from '../report/tables.js';
import { randint, rng } from '../tasks/rng.js';
import { benchSpec } from './latency.js';
import { lockOutput } from './lock.js';
import { checkPolicies, sequenceOptions } from './policies.js';
import { policyPoints, type PolicyPoint } from './units.js';

export interface SweepRow {
  model: string;
  backend: string;
  length: number;
  /** Cells of the sweep (policy x budget; dense once). */
  cells: number;
  /** Tokens each cell generates (no stop token: every cell generates them all). */
  generated: number;
  repeats: number;
  /** Seconds for the whole sweep of one sample, medians: shared prefill and batched decode. */
  sharedS: number;
  /** Each cell alone, one after another. */
  singleS: number;
  /** The dense cell alone, within the one-at-a-time sweep. */
  denseS: number | null;
  singleOverShared: number;
  sharedOverDense: number | null;
}

const f = (v: number | null, d: number) => (v === null ? '-' : v.toFixed(d));

export const SWEEP_COLUMNS: Column<SweepRow>[] = [
  { title: 'model', value: (r) => r.model },
  { title: 'backend', value: (r) => r.backend },
  { title: 'context', value: (r) => String(r.length) },
  { title: 'cells', value: (r) => String(r.cells) },
  { title: 'generated/cell', value: (r) => String(r.generated) },
  { title: 'shared s/sample', value: (r) => f(r.sharedS, 3) },
  { title: 'one at a time s/sample', value: (r) => f(r.singleS, 3) },
  { title: 'dense cell alone s', value: (r) => f(r.denseS, 3) },
  { title: 'one at a time / shared', value: (r) => f(r.singleOverShared, 2) },
  { title: 'shared / dense alone', value: (r) => f(r.sharedOverDense, 2) },
];

/** Seconds that `work` takes. */
async function seconds(work: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await work();
  return (performance.now() - t0) / 1000;
}

/** The sweep as quest eval runs it by default: one prefill, every cell decoded in one batch. */
async function shared(model: NativeModel, cfg: BenchConfig, points: PolicyPoint<number>[], context: Int32Array): Promise<number> {
  return seconds(async () => {
    const seqs = await model.prefillShared(context, points.map((p) => sequenceOptions(cfg, p)));
    try {
      await model.generateBatch(seqs, cfg.decodeSteps, new Int32Array(0));
    } finally {
      for (const s of seqs) s.close();
    }
  });
}

/** The sweep one cell at a time (quest eval --cells single): each cell's seconds. */
async function single(model: NativeModel, cfg: BenchConfig, points: PolicyPoint<number>[], context: Int32Array): Promise<number[]> {
  const out: number[] = [];
  for (const p of points)
    out.push(
      await seconds(async () => {
        const seq = model.createSequence(sequenceOptions(cfg, p));
        try {
          await seq.prefill(context);
          await seq.generate(cfg.decodeSteps, new Int32Array(0));
        } finally {
          seq.close();
        }
      }),
    );
  return out;
}

export interface BenchEvalProgress {
  note(message: string): void;
  step(row: SweepRow): void;
}

/** Times the sweep of `cfg` at each length both ways and writes the tables. */
export async function runBenchEval(cfg: BenchConfig, argv: string[], progress: BenchEvalProgress): Promise<{ rows: SweepRow[]; dir: string; meta: RunMetadata }> {
  checkPolicies(cfg);
  if (cfg.workers > 1 || cfg.devices.length > 0) throw new QuestError('bench-eval: runs in one process (workers and devices are not taken; remove them from the config)');
  const backend = chooseBackend(cfg.device, cfg);
  const { spec, name } = benchSpec(cfg.model, cfg.seed);
  for (const L of cfg.lengths)
    if (L + cfg.decodeSteps > spec.maxPositions)
      throw new QuestError(`--lengths ${L}: with ${cfg.decodeSteps} generated tokens this exceeds the model's ${spec.maxPositions} positions`);
  if (cfg.outputPath) makeOutputDir(path.resolve(cfg.outputPath));
  const unlock = cfg.outputPath ? lockOutput(path.resolve(cfg.outputPath), progress.note) : () => {};
  try {
    const model = await loadModel(spec, cfg.model, backend.use);
    const points = policyPoints(cfg.policies, cfg.budgets);
    const dense = points.findIndex((p) => p.policy === 'dense');
    const next = rng(cfg.seed);
    const rows: SweepRow[] = [];
    for (const length of cfg.lengths) {
      const context = Int32Array.from({ length }, () => randint(next, 0, spec.vocabSize - 1));
      const sharedS: number[] = [];
      const singleS: number[] = [];
      const denseS: number[] = [];
      for (let r = 0; r < cfg.repeats; r++) {
        sharedS.push(await shared(model, cfg, points, context));
        const each = await single(model, cfg, points, context);
        singleS.push(each.reduce((a, b) => a + b, 0));
        if (dense >= 0) denseS.push(each[dense]);
      }
      const s = median(sharedS);
      const one = median(singleS);
      const d = denseS.length ? median(denseS) : null;
      const row: SweepRow = {
        model: name,
        backend: backend.use,
        length,
        cells: points.length,
        generated: cfg.decodeSteps,
        repeats: cfg.repeats,
        sharedS: s,
        singleS: one,
        denseS: d,
        singleOverShared: one / s,
        sharedOverDense: d === null ? null : s / d,
      };
      rows.push(row);
      progress.step(row);
    }
    const meta = await runMetadata(backend, argv, cfg.outputPath ?? undefined);
    const dir = path.resolve(cfg.outputPath ?? path.join(projectRoot, 'runs', `bench-eval-${path.basename(cfg.model)}-${meta.date.replace(/[:.]/g, '-')}`));
    writeTables(dir, 'sweep', rows, SWEEP_COLUMNS, { ...meta, config: cfg });
    writeRows(dir, 'sweep', rows);
    return { rows, dir, meta };
  } finally {
    unlock();
  }
}
