import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { projectRoot } from '../config/index.js';
import { chooseBackend, native, noGpu, nvidiaDriver, type NativeAttentionBenchRow } from '../engine/index.js';
import { QuestError } from '../errors.js';
import { runMetadata, warnProvenance } from '../report/metadata.js';
import { checkAttention } from '../run/attention-check.js';
import { makeOutputDir, markdown, writeTables, type Column } from '../report/tables.js';
import { intList, nonNegativeInt, positiveInt } from './options.js';

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
const COLUMNS: Column<AttentionRow>[] = [
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

type Shape = { heads: number; kvHeads: number; headDim: number; pageSize: number };

/** Torch's timings, refused when they were taken on another shape than ours. */
function readTorch(file: string | undefined, shape: Shape): TorchRow[] {
  if (!file) return [];
  if (!existsSync(file)) throw new QuestError(`--torch ${file}: no such file`);
  let data: { rows?: TorchRow[]; shape?: Shape };
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new QuestError(`--torch ${file}: not valid JSON`);
  }
  if (!Array.isArray(data.rows) || !data.shape) throw new QuestError(`--torch ${file}: not the JSON tools/bench-torch.py writes`);
  if (JSON.stringify(data.shape) !== JSON.stringify(shape))
    throw new QuestError(`--torch ${file}: timed ${JSON.stringify(data.shape)}, not ${JSON.stringify(shape)}`);
  return data.rows;
}

/** The shapes the kernels are built for (kernels/attention.cu), and Quest budgets of whole pages. */
function checkShape(s: Shape, budgets: number[]): void {
  const small = budgets.find((b) => b < s.pageSize);
  if (small !== undefined) throw new QuestError(`--budgets: ${small} is smaller than a page (${s.pageSize} tokens)`);
  if (s.headDim !== 64 && s.headDim !== 128) throw new QuestError(`--head-dim: ${s.headDim} is not 64 or 128`);
  if (s.heads % s.kvHeads !== 0 || ![1, 2, 4, 8].includes(s.heads / s.kvHeads))
    throw new QuestError(`--kv-heads: ${s.heads} heads over ${s.kvHeads} KV heads is not a group of 1, 2, 4 or 8`);
}

export function benchAttentionCommand(program: Command, argv: string[]): void {
  program
    .command('bench-attention')
    .description('GPU decode attention per step: dense vs Quest (estimate, top-k, sparse attention), with the bandwidth floor and torch beside')
    .option('--heads <n>', 'query heads', positiveInt('--heads'), 32)
    .option('--kv-heads <n>', 'KV heads (GQA when fewer than --heads)', positiveInt('--kv-heads'))
    .option('--head-dim <n>', '64 or 128', positiveInt('--head-dim'), 128)
    .option('--lengths <tokens>', 'context lengths', intList('--lengths'), [4096, 8192, 16384, 32768, 65536, 131072])
    .option('--budgets <tokens>', 'Quest budgets', intList('--budgets'), [2048])
    .option('--repeats <n>', 'timed replays; the median is reported', positiveInt('--repeats'), 50)
    .option('--seed <n>', 'seed of the random cache', nonNegativeInt('--seed'), 0)
    .option('--torch <file>', 'torch timings of the same shapes (tools/bench-torch.py)')
    .option('--output-path <dir>', 'where the tables go')
    .option('--check', 'first check every kernel against the CPU backend on fresh random inputs; stop on a mismatch')
    .action(async (o) => {
      const shape = { heads: o.heads, kvHeads: o.kvHeads ?? o.heads, headDim: o.headDim, pageSize: 16 };
      checkShape(shape, o.budgets);
      const torch = readTorch(o.torch, shape);
      // An explicit folder is made before the work: a path that cannot be written loses nothing measured.
      if (o.outputPath) makeOutputDir(path.resolve(o.outputPath));
      const backend = chooseBackend('auto');
      if (!backend.info.cuda.compiled || backend.info.cuda.devices === 0)
        throw new QuestError(`bench-attention needs a GPU: ${backend.info.cuda.compiled ? noGpu(backend.info, nvidiaDriver()) : backend.info.cuda.error}`);
      if (o.check) {
        const cases = await checkAttention();
        for (const c of cases)
          process.stdout.write(
            `parity ${JSON.stringify(c.shape)} length ${c.length} budget ${c.budget} seed ${c.seed}: ${c.failures.length ? `FAIL ${c.failures.join('; ')}` : 'ok'} ${JSON.stringify(c.result)}\n`,
          );
        const failed = cases.filter((c) => c.failures.length).length;
        if (failed) throw new QuestError(`--check: ${failed} of ${cases.length} parity cases failed`);
        process.stdout.write(`${cases.length} passed, 0 failed\n`);
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
      writeTables(dir, 'attention', rows, COLUMNS, meta);
      writeFileSync(path.join(dir, 'rows.json'), JSON.stringify(rows, null, 2) + '\n');
      process.stdout.write(
        `\n${res.device} | copy ${res.copyGBps.toFixed(0)} GB/s (read + write) | ${shape.heads} heads x ${shape.headDim}, ${shape.kvHeads} KV heads, fp16, page 16 | ${meta.date}\n\n${markdown(rows, COLUMNS)}\ntables: ${dir}\n`,
      );
      warnProvenance(meta, path.join(dir, 'results.json'));
    });
}
