/** The bench-latency runner: the latency runner's rows, transformers' prefill beside them, written as tables. */
import path from 'node:path';
import { projectRoot, type BenchConfig } from '../config/index.js';
import { QuestError } from '../errors.js';
import { runMetadata, type RunMetadata } from '../report/metadata.js';
import { makeOutputDir, writeRows, writeTables, type Column } from '../report/tables.js';
import { lockOutput } from './lock.js';
import { readTorchJson } from './bench-attention.js';
import { addTorchPrefill, runLatency, type LatencyProgress, type LatencyRow, type TorchPrefillRow } from './latency.js';

const f = (v: number | null, d: number) => (v === null ? '-' : v.toFixed(d));

export const LATENCY_COLUMNS: Column<LatencyRow>[] = [
  { title: 'model', value: (r) => r.model },
  { title: 'backend', value: (r) => r.backend },
  { title: 'context', value: (r) => String(r.length) },
  { title: 'policy', value: (r) => r.policy },
  { title: 'budget', value: (r) => (r.budget === null ? 'all' : String(r.budget)) },
  { title: 'batch', value: (r) => String(r.batch ?? 1) },
  { title: 'prefill ms', value: (r) => f(r.prefillMs, 1) },
  { title: 'prefill tok/s', value: (r) => f(r.prefillTokensPerS, 0) },
  { title: 'prefill TFLOP/s', value: (r) => f(r.prefillTflops, 0) },
  { title: 'torch prefill ms', value: (r) => f(r.torchPrefillMs, 1) },
  { title: 'ours / torch', value: (r) => f(r.torchPrefillMs === null ? null : r.prefillMs / r.torchPrefillMs, 2) },
  { title: 'attn prefill ms/layer', value: (r) => f(r.attentionPrefillMs, 2) },
  { title: 'torch SDPA ms/layer', value: (r) => f(r.torchSdpaMs, 2) },
  { title: 'decode ms/token', value: (r) => f(r.decodeMsPerStep, 2) },
  // Tables written before the column (quest results reads them again) have no value.
  { title: 'host issue ms/token', value: (r) => f(r.issueMsPerStep ?? null, 2) },
  { title: 'tokens read/step/head', value: (r) => f(r.tokensPerStep, 1) },
  { title: 'KV KiB/step', value: (r) => f(r.kvKiBPerStep, 1) },
  { title: 'floor ms/token', value: (r) => f(r.floorMsPerStep, 2) },
  { title: 'x dense', value: (r) => f(r.speedupVsDense, 2) },
  { title: 'attention µs/layer', value: (r) => f(r.attentionUs?.total ?? null, 1) },
  { title: 'estimate µs', value: (r) => (r.policy === 'quest' ? f(r.attentionUs?.estimate ?? null, 1) : '-') },
  { title: 'top-k µs', value: (r) => (r.policy === 'quest' ? f(r.attentionUs?.topk ?? null, 1) : '-') },
];

export interface BenchLatencyResult {
  rows: LatencyRow[];
  dir: string;
  /** Device-to-device copy bandwidth of each GPU used, measured in this run; empty on the CPU. */
  copyGBps: number[];
  meta: RunMetadata;
}

/** tools/bench-torch.py --prefill's rows. */
function readTorchPrefill(file: string | undefined): TorchPrefillRow[] {
  if (!file) return [];
  const data = readTorchJson(file) as { kind?: string; rows?: unknown[] } | null;
  const isRow = (r: unknown): r is TorchPrefillRow => {
    const x = r as Partial<TorchPrefillRow> | null;
    return typeof x?.model === 'string' && typeof x.length === 'number' && typeof x.prefillMs === 'number' && typeof x.sdpaMs === 'number';
  };
  // Checked whole before any measuring: a bad file must not cost the run.
  if (data?.kind !== 'prefill' || !Array.isArray(data.rows) || !data.rows.every(isRow))
    throw new QuestError(`--torch ${file}: not the JSON tools/bench-torch.py --prefill writes (kind "prefill", rows of model, length, prefillMs, sdpaMs)`);
  return data.rows;
}

/** Measures every length and policy point of `cfg` and writes the tables; `torch` is tools/bench-torch.py --prefill's file. */
export async function runBenchLatency(cfg: BenchConfig, torch: string | undefined, argv: string[], progress: LatencyProgress): Promise<BenchLatencyResult> {
  const torchRows = readTorchPrefill(torch);
  // An explicit folder is made before the work: a path that cannot be written loses nothing measured.
  if (cfg.outputPath) makeOutputDir(path.resolve(cfg.outputPath));
  // A second run into the same folder is refused, as eval's is.
  const unlock = cfg.outputPath ? lockOutput(path.resolve(cfg.outputPath), progress.note) : () => {};
  try {
    const { rows, backend, copyGBps } = await runLatency(cfg, progress);
    addTorchPrefill(rows, torchRows);
    const meta = await runMetadata(backend, argv, cfg.outputPath ?? undefined);
    const stamp = meta.date.replace(/[:.]/g, '-');
    const dir = path.resolve(cfg.outputPath ?? path.join(projectRoot, 'runs', `bench-${path.basename(cfg.model)}-${stamp}`));
    writeTables(dir, 'latency', rows, LATENCY_COLUMNS, { ...meta, copyGBps, config: cfg });
    writeRows(dir, 'latency', rows);
    return { rows, dir, copyGBps, meta };
  } finally {
    unlock();
  }
}
