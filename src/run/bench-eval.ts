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
  /** Where the shared sweep's seconds go: its one prefill (and the cells' forks), its batched decode (and the cells' release). */
  sharedPrefillS: number;
  sharedDecodeS: number;
  /** The same two of the dense cell alone. */
  densePrefillS: number | null;
  denseDecodeS: number | null;
  singleOverShared: number;
  sharedOverDense: number | null;
}

// Rows published before a column existed lack its field.
const f = (v: number | null | undefined, d: number) => (v == null ? '-' : v.toFixed(d));

export const SWEEP_COLUMNS: Column<SweepRow>[] = [
  { title: 'model', value: (r) => r.model },
  { title: 'backend', value: (r) => r.backend },
  { title: 'context', value: (r) => String(r.length) },
  { title: 'cells', value: (r) => String(r.cells) },
  { title: 'generated/cell', value: (r) => String(r.generated) },
  { title: 'shared s/sample', value: (r) => f(r.sharedS, 3) },
  { title: 'one at a time s/sample', value: (r) => f(r.singleS, 3) },
  { title: 'dense cell alone s', value: (r) => f(r.denseS, 3) },
  { title: 'shared prefill / decode s', value: (r) => `${f(r.sharedPrefillS, 3)} / ${f(r.sharedDecodeS, 3)}` },
  { title: 'dense prefill / decode s', value: (r) => `${f(r.densePrefillS, 3)} / ${f(r.denseDecodeS, 3)}` },
  { title: 'one at a time / shared', value: (r) => f(r.singleOverShared, 2) },
  { title: 'shared / dense alone', value: (r) => f(r.sharedOverDense, 2) },
];

/** A sweep's (or a cell's) seconds: its prefill, its decode. */
interface Phases {
  prefill: number;
  decode: number;
}

const now = () => performance.now() / 1000;

/** The sweep as quest eval runs it by default: one prefill, every cell decoded in one batch. */
async function shared(model: NativeModel, cfg: BenchConfig, points: PolicyPoint<number>[], context: Int32Array): Promise<Phases> {
  const t0 = now();
  const seqs = await model.prefillShared(context, points.map((p) => sequenceOptions(cfg, p)));
  const t1 = now();
  try {
    await model.generateBatch(seqs, cfg.decodeSteps, new Int32Array(0));
  } finally {
    for (const s of seqs) s.close();
  }
  return { prefill: t1 - t0, decode: now() - t1 };
}

/** The sweep one cell at a time (quest eval --cells single): each cell's phases. */
async function single(model: NativeModel, cfg: BenchConfig, points: PolicyPoint<number>[], context: Int32Array): Promise<Phases[]> {
  const out: Phases[] = [];
  for (const p of points) {
    const t0 = now();
    const seq = model.createSequence(sequenceOptions(cfg, p));
    let t1 = t0;
    try {
      await seq.prefill(context);
      t1 = now();
      await seq.generate(cfg.decodeSteps, new Int32Array(0));
    } finally {
      seq.close();
    }
    out.push({ prefill: t1 - t0, decode: now() - t1 });
  }
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
      const sharedRuns: Phases[] = [];
      const singleS: number[] = [];
      const denseRuns: Phases[] = [];
      for (let r = 0; r < cfg.repeats; r++) {
        sharedRuns.push(await shared(model, cfg, points, context));
        const each = await single(model, cfg, points, context);
        singleS.push(each.reduce((a, c) => a + c.prefill + c.decode, 0));
        if (dense >= 0) denseRuns.push(each[dense]);
      }
      // Medians of each measure on its own, so the two phases need not add up to the whole.
      const of = (runs: Phases[], pick: (x: Phases) => number) => median(runs.map(pick));
      const s = of(sharedRuns, (x) => x.prefill + x.decode);
      const one = median(singleS);
      const d = denseRuns.length ? of(denseRuns, (x) => x.prefill + x.decode) : null;
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
        sharedPrefillS: of(sharedRuns, (x) => x.prefill),
        sharedDecodeS: of(sharedRuns, (x) => x.decode),
        densePrefillS: d === null ? null : of(denseRuns, (x) => x.prefill),
        denseDecodeS: d === null ? null : of(denseRuns, (x) => x.decode),
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
