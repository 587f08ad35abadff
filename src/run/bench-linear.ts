/** The linear-layer bench runner: each projection of a model's decode step timed alone, against the copy rate. */
import path from 'node:path';
import { projectRoot } from '../config/index.js';
import { chooseBackend, native, noGpu, nvidiaDriver, type NativeLinearBenchRow, type NativeLinearShape } from '../engine/index.js';
import { QuestError } from '../errors.js';
import type { ArchSpec } from '../model/config.js';
import { runMetadata, type RunMetadata } from '../report/metadata.js';
import { makeOutputDir, writeRows, writeTables, type Column } from '../report/tables.js';
import { benchSpec } from './latency.js';

export interface LinearRow extends NativeLinearBenchRow {
  model: string;
  /** Bytes moved over the copy bandwidth of the same run: no kernel can be faster. */
  floorUs: number;
  /** The product alone: bytes over its time, and that as a share of the copy rate. */
  achievedGBps: number;
  ofCopy: number;
}

const f = (v: number, d = 1) => v.toFixed(d);
export const LINEAR_COLUMNS: Column<LinearRow>[] = [
  { title: 'layer', value: (r) => r.name },
  { title: 'in x out', value: (r) => (r.name === 'layers' ? '-' : `${r.in} x ${r.out}`) },
  { title: 'rows', value: (r) => String(r.rows) },
  { title: 'kernel', value: (r) => r.kernel },
  { title: 'MB moved', value: (r) => f(r.bytes / 1e6, 2) },
  { title: 'µs', value: (r) => f(r.us) },
  { title: 'floor µs', value: (r) => f(r.floorUs) },
  { title: 'GB/s', value: (r) => f(r.achievedGBps, 0) },
  { title: '% of copy', value: (r) => f(100 * r.ofCopy, 0) },
  { title: 'with staging µs', value: (r) => f(r.stagedUs) },
];

export interface LinearOptions {
  model: string;
  batch: number[];
  /** Also every layer's projections back to back (the model's layer count, each its own weights). */
  layers: boolean;
  repeats: number;
  seed: number;
  outputPath?: string;
}

export interface LinearResult {
  rows: LinearRow[];
  dir: string;
  device: string;
  copyGBps: number;
  meta: RunMetadata;
}

/** A decode step's projections as the GPU engine stacks them (q, k, v in one; gate and up in one), and the LM head. */
export function stepShapes(a: ArchSpec): NativeLinearShape[] {
  const int4 = a.quant !== undefined;
  const q = a.numHeads * a.headDim, kv = a.numKvHeads * a.headDim;
  return [
    { name: 'qkv', in: a.hiddenSize, out: q + 2 * kv, int4, perLayer: true },
    { name: 'o', in: q, out: a.hiddenSize, int4, perLayer: true },
    { name: 'gate_up', in: a.hiddenSize, out: 2 * a.intermediateSize, int4, perLayer: true },
    { name: 'down', in: a.intermediateSize, out: a.hiddenSize, int4, perLayer: true },
    // Stored as it is in 4-bit checkpoints too: a 16-bit GEMV.
    { name: 'lm_head', in: a.hiddenSize, out: a.vocabSize, int4: false, perLayer: false },
  ];
}

export async function runLinearBench(o: LinearOptions, argv: string[]): Promise<LinearResult> {
  const { spec, name } = benchSpec(o.model, o.seed);
  const group = spec.quant ? spec.quant.groupSize : 128;
  if (spec.quant && group <= 0) throw new QuestError(`--model ${o.model}: the GEMV bench takes grouped 4-bit weights, not group ${group}`);
  const most = native().backendInfo().gpuShapes.int4GemvRows;
  const over = o.batch.find((b) => b > most);
  if (over !== undefined) throw new QuestError(`--batch: ${over} rows; bench-linear takes 1 to ${most}, the 4-bit GEMV's most (a larger batch runs in parts of ${most})`);
  if (o.outputPath) makeOutputDir(path.resolve(o.outputPath));
  const backend = chooseBackend('auto');
  if (!backend.info.cuda.compiled || backend.info.cuda.devices === 0)
    throw new QuestError(`bench-linear needs a GPU: ${backend.info.cuda.compiled ? noGpu(backend.info, nvidiaDriver()) : backend.info.cuda.error}`);
  const res = await native().benchLinear({ shapes: stepShapes(spec), rows: [...new Set(o.batch)], group, layers: o.layers ? spec.numLayers : 0, repeats: o.repeats, seed: o.seed });
  const rows: LinearRow[] = res.rows.map((r) => {
    const achievedGBps = r.bytes / (r.us * 1e-6) / 1e9;
    return { ...r, model: name, floorUs: (r.bytes / (res.copyGBps * 1e9)) * 1e6, achievedGBps, ofCopy: achievedGBps / res.copyGBps };
  });
  const meta = { ...(await runMetadata(backend, argv, o.outputPath)), device: res.device, copyGBps: res.copyGBps, model: name, group };
  const dir = path.resolve(o.outputPath ?? path.join(projectRoot, 'runs', `bench-linear-${meta.date.replace(/[:.]/g, '-')}`));
  writeTables(dir, 'linear', rows, LINEAR_COLUMNS, meta);
  writeRows(dir, 'linear', rows);
  return { rows, dir, device: res.device, copyGBps: res.copyGBps, meta };
}
