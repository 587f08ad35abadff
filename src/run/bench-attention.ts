/** The attention bench runner: one decode step's attention, dense vs Quest, beside the bandwidth floor and torch. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../config/index.js';
import { chooseBackend, native, noGpu, nvidiaDriver, orList, type NativeAttentionBenchRow } from '../engine/index.js';
import { QuestError } from '../errors.js';
import { runMetadata, type RunMetadata } from '../report/metadata.js';
import { makeOutputDir, writeRows, writeTables, type Column } from '../report/tables.js';
import { checkAttention, type ParityCase } from './attention-check.js';

interface TorchRow {
  length: number;
  policy: string;
  budget: number;
  us: number;
}

export interface AttentionRow extends NativeAttentionBenchRow {
  /** Bytes read over the copy bandwidth of the same run: no kernel can be faster. */
  floorUs: number;
  achievedGBps: number;
  torchUs: number | null;
  /** Ours over torch's time: below 1 is faster. */
  vsTorch: number | null;
  /** Our dense time over this row's time at the same length. */
  speedupVsDense: number;
}

const f = (v: number | null, d = 1) => (v === null ? '-' : v.toFixed(d));
export const ATTENTION_COLUMNS: Column<AttentionRow>[] = [
  { title: 'context', value: (r) => String(r.length) },
  { title: 'policy', value: (r) => r.policy },
  { title: 'budget', value: (r) => (r.budget ? String(r.budget) : 'all') },
  { title: 'estimate µs', value: (r) => (r.policy === 'quest' ? f(r.estimateUs) : '-') },
  { title: 'top-k µs', value: (r) => (r.policy === 'quest' ? f(r.topkUs) : '-') },
  { title: 'attention µs', value: (r) => f(r.attentionUs) },
  { title: 'step µs', value: (r) => f(r.totalUs) },
  { title: 'MB read', value: (r) => f((r.kvBytes + r.metaBytes) / 1e6, 2) },
  { title: 'GB/s', value: (r) => f(r.achievedGBps, 0) },
  { title: 'floor µs', value: (r) => f(r.floorUs) },
  { title: 'torch µs', value: (r) => f(r.torchUs) },
  { title: 'ours / torch', value: (r) => f(r.vsTorch, 2) },
  { title: 'dense / this', value: (r) => f(r.speedupVsDense, 2) },
];

export type Shape = { heads: number; kvHeads: number; headDim: number; pageSize: number };

export interface AttentionOptions {
  shape: Shape;
  lengths: number[];
  budgets: number[];
  repeats: number;
  seed: number;
  /** tools/bench-torch.py's JSON of the same shape, shown beside. */
  torch?: string;
  outputPath?: string;
  /** Check every kernel against the CPU backend first; stop on a mismatch. */
  check?: boolean;
}

export interface AttentionResult {
  rows: AttentionRow[];
  dir: string;
  device: string;
  copyGBps: number;
  meta: RunMetadata;
}

/** A --torch file of tools/bench-torch.py, parsed; its shape is the caller's to check. */
export function readTorchJson(file: string): unknown {
  if (!existsSync(file)) throw new QuestError(`--torch ${file}: no such file`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new QuestError(`--torch ${file}: not valid JSON`);
  }
}

/** Torch's timings, refused when they were taken on another shape than ours. */
function readTorch(file: string | undefined, shape: Shape): TorchRow[] {
  if (!file) return [];
  const data = readTorchJson(file) as { rows?: TorchRow[]; shape?: Shape };
  if (!Array.isArray(data.rows) || !data.shape) throw new QuestError(`--torch ${file}: not the JSON tools/bench-torch.py writes`);
  if (JSON.stringify(data.shape) !== JSON.stringify(shape))
    throw new QuestError(`--torch ${file}: timed ${JSON.stringify(data.shape)}, not ${JSON.stringify(shape)}`);
  return data.rows;
}

/** The shapes the kernels are built for (the engine's gpuShapes), and Quest budgets of whole pages. */
function checkShape(s: Shape, budgets: number[]): void {
  const small = budgets.find((b) => b < s.pageSize);
  if (small !== undefined) throw new QuestError(`--budgets: ${small} is smaller than a page (${s.pageSize} tokens)`);
  const { headDims, groups } = native().backendInfo().gpuShapes;
  if (!headDims.includes(s.headDim)) throw new QuestError(`--head-dim: ${s.headDim} is not ${orList(headDims)}`);
  if (s.heads % s.kvHeads !== 0 || !groups.includes(s.heads / s.kvHeads))
    throw new QuestError(`--kv-heads: ${s.heads} heads over ${s.kvHeads} KV heads is not a group of ${orList(groups)}`);
}

/** Times the attention step and writes its tables; `parity` is shown the --check cases before a mismatch stops the run. */
export async function runAttentionBench(o: AttentionOptions, argv: string[], parity: (cases: ParityCase[]) => void): Promise<AttentionResult> {
  const { shape } = o;
  checkShape(shape, o.budgets);
  const torch = readTorch(o.torch, shape);
  // An explicit folder is made before the work: a path that cannot be written loses nothing measured.
  if (o.outputPath) makeOutputDir(path.resolve(o.outputPath));
  const backend = chooseBackend('auto');
  if (!backend.info.cuda.compiled || backend.info.cuda.devices === 0)
    throw new QuestError(`bench-attention needs a GPU: ${backend.info.cuda.compiled ? noGpu(backend.info, nvidiaDriver()) : backend.info.cuda.error}`);
  if (o.check) {
    const cases = await checkAttention();
    parity(cases);
    const failed = cases.filter((c) => c.failures.length).length;
    if (failed) throw new QuestError(`--check: ${failed} of ${cases.length} parity cases failed`);
  }
  const res = await native().benchAttention({ ...shape, lengths: o.lengths, budgets: o.budgets, repeats: o.repeats, seed: o.seed });
  const rows: AttentionRow[] = res.rows.map((r) => {
    const bytes = r.kvBytes + r.metaBytes;
    const t = torch.find((x) => x.length === r.length && x.policy === r.policy && x.budget === r.budget);
    const dense = res.rows.find((x) => x.length === r.length && x.policy === 'dense')!;
    return {
      ...r,
      floorUs: (bytes / (res.copyGBps * 1e9)) * 1e6,
      achievedGBps: bytes / (r.totalUs * 1e-6) / 1e9,
      torchUs: t?.us ?? null,
      vsTorch: t ? r.totalUs / t.us : null,
      speedupVsDense: dense.totalUs / r.totalUs,
    };
  });
  const meta = { ...(await runMetadata(backend, argv, o.outputPath)), device: res.device, copyGBps: res.copyGBps, shape };
  const dir = path.resolve(o.outputPath ?? path.join(projectRoot, 'runs', `bench-attention-${meta.date.replace(/[:.]/g, '-')}`));
  writeTables(dir, 'attention', rows, ATTENTION_COLUMNS, meta);
  writeRows(dir, 'attention', rows);
  return { rows, dir, device: res.device, copyGBps: res.copyGBps, meta };
}
