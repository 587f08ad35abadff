import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { benchConfig, benchDefaults, projectRoot } from '../config/index.js';
import { runMetadata, warnProvenance } from '../report/metadata.js';
import { makeOutputDir, markdown, writeTables, type Column } from '../report/tables.js';
import { QuestError } from '../errors.js';
import { addTorchPrefill, runLatency, type LatencyRow, type TorchPrefillRow } from '../run/latency.js';
import { addPolicyFlags, deviceList, intList, nonNegativeInt, oneOf, policyFlags, positiveInt, showDefaults } from './options.js';
import { onInterrupt } from './interrupt.js';
import { bar } from './progress.js';

const f = (v: number | null, d: number) => (v === null ? '-' : v.toFixed(d));

/** tools/bench-torch.py --prefill's rows. */
function readTorchPrefill(file: string | undefined): TorchPrefillRow[] {
  if (!file) return [];
  if (!existsSync(file)) throw new QuestError(`--torch ${file}: no such file`);
  let data: { kind?: string; rows?: TorchPrefillRow[] };
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new QuestError(`--torch ${file}: not valid JSON`);
  }
  if (data.kind !== 'prefill' || !Array.isArray(data.rows)) throw new QuestError(`--torch ${file}: not the JSON tools/bench-torch.py --prefill writes`);
  return data.rows;
}
const COLUMNS: Column<LatencyRow>[] = [
  { title: 'model', value: (r) => r.model },
  { title: 'backend', value: (r) => r.backend },
  { title: 'context', value: (r) => String(r.length) },
  { title: 'policy', value: (r) => r.policy },
  { title: 'budget', value: (r) => (r.budget === null ? 'all' : String(r.budget)) },
  { title: 'prefill ms', value: (r) => f(r.prefillMs, 1) },
  { title: 'prefill tok/s', value: (r) => f(r.prefillTokensPerS, 0) },
  { title: 'prefill TFLOP/s', value: (r) => f(r.prefillTflops, 0) },
  { title: 'torch prefill ms', value: (r) => f(r.torchPrefillMs, 1) },
  { title: 'ours / torch', value: (r) => f(r.torchPrefillMs === null ? null : r.prefillMs / r.torchPrefillMs, 2) },
  { title: 'attn prefill ms/layer', value: (r) => f(r.attentionPrefillMs, 2) },
  { title: 'torch SDPA ms/layer', value: (r) => f(r.torchSdpaMs, 2) },
  { title: 'decode ms/token', value: (r) => f(r.decodeMsPerStep, 2) },
  { title: 'tokens read/step/head', value: (r) => f(r.tokensPerStep, 1) },
  { title: 'KV KiB/step', value: (r) => f(r.kvKiBPerStep, 1) },
  { title: 'floor ms/token', value: (r) => f(r.floorMsPerStep, 2) },
  { title: 'x dense', value: (r) => f(r.speedupVsDense, 2) },
  { title: 'attention µs/layer', value: (r) => f(r.attentionUs?.total ?? null, 1) },
  { title: 'estimate µs', value: (r) => (r.policy === 'quest' ? f(r.attentionUs?.estimate ?? null, 1) : '-') },
  { title: 'top-k µs', value: (r) => (r.policy === 'quest' ? f(r.attentionUs?.topk ?? null, 1) : '-') },
];

export function benchLatencyCommand(program: Command, argv: string[]): void {
  const cmd = program
    .command('bench-latency')
    .description('prefill and per-token decode latency at given context lengths (model folder or preset with random weights)')
    .option('--model <dir|preset>', 'model folder, or a preset: llama-2-7b, llama-3-8b, mistral-7b, qwen2-7b, tiny')
    .option('--lengths <tokens>', 'context lengths, comma-separated', intList('--lengths'))
    .option('--decode-steps <n>', 'decode steps timed after the prefill', positiveInt('--decode-steps'))
    .option('--repeats <n>', 'repeats; the median is reported', positiveInt('--repeats'))
    .option('--seed <n>', 'seed of the random tokens and weights', nonNegativeInt('--seed'))
    .option('--output-path <dir>', 'where the tables go (default: a new runs/bench-<model>-<time>)')
    .option('--config <file>', 'YAML file of settings; flags override it')
    .option('--device <name>', 'auto, cpu or cuda', oneOf('--device', ['auto', 'cpu', 'cuda'] as const))
    .option('--workers <n>', 'worker processes, points dealt out as they free up (each on the backend --device picks, sharing it)', positiveInt('--workers'))
    .option('--devices <ids>', 'GPUs to spread the points over, one worker each (e.g. 0,1)', deviceList('--devices'))
    .option('--torch <file>', "transformers' prefill of the same presets and lengths (tools/bench-torch.py --prefill)");
  showDefaults(addPolicyFlags(cmd), benchDefaults()).action(async (o) => {
      const cfg = benchConfig(o.config, {
        model: o.model,
        lengths: o.lengths,
        decodeSteps: o.decodeSteps,
        repeats: o.repeats,
        seed: o.seed,
        ...policyFlags(o),
        outputPath: o.outputPath,
        device: o.device,
        workers: o.workers,
        devices: o.devices,
      });
      const torch = readTorchPrefill(o.torch);
      // An explicit folder is made before the work: a path that cannot be written loses nothing measured.
      if (cfg.outputPath) makeOutputDir(path.resolve(cfg.outputPath));
      const b = bar('bench');
      const undo = onInterrupt((signal) => {
        b.stop();
        process.stderr.write(`quest: ${signal}: stopped; bench-latency writes its tables at the end, so nothing was written\n`);
      });
      const { rows, backend, copyGBps } = await runLatency(cfg, {
        start: (total) => b.start(total),
        step: (r) => b.increment(`${r.length} ${r.policy}`),
        note: b.note,
        stop: b.stop,
      });
      undo();
      addTorchPrefill(rows, torch);
      const meta = await runMetadata(backend, argv, cfg.outputPath ?? undefined);
      const stamp = meta.date.replace(/[:.]/g, '-');
      const dir = path.resolve(cfg.outputPath ?? path.join(projectRoot, 'runs', `bench-${path.basename(cfg.model)}-${stamp}`));
      writeTables(dir, rows, COLUMNS, { ...meta, copyGBps, config: cfg });
      writeFileSync(path.join(dir, 'rows.json'), JSON.stringify(rows, null, 2) + '\n');
      const copy = copyGBps.length ? ` | copy ${copyGBps.map((g) => g.toFixed(0)).join(', ')} GB/s (read + write)` : '';
      process.stdout.write(`\n${meta.device}${copy} | ${meta.date}\n\n${markdown(rows, COLUMNS)}\ntables: ${dir}\n`);
      warnProvenance(meta, path.join(dir, 'results.json'));
    });
}
