import path from 'node:path';
import type { Command } from 'commander';
import { benchConfig, benchDefaults } from '../config/index.js';
import { warnProvenance } from '../report/metadata.js';
import { markdown } from '../report/tables.js';
import { LATENCY_COLUMNS, runBenchLatency } from '../run/bench-latency.js';
import { addBenchFlags, addPolicyFlags, benchFlagValues, deviceList, intList, positiveInt, showDefaults } from './options.js';
import { onInterrupt } from './interrupt.js';
import { bar } from './progress.js';

export function benchLatencyCommand(program: Command, argv: string[]): void {
  const cmd = program
    .command('bench-latency')
    .description('prefill and per-token decode latency at given context lengths (model folder or preset with random weights)');
  addBenchFlags(cmd, { decodeSteps: 'decode steps timed after the prefill', outputPath: 'where the tables go (default: a new runs/bench-<model>-<time>)' });
  cmd
    .option('--batch <sizes>', 'sequences decoded together, comma-separated: a row per size (each sequence its own copy of the context)', intList('--batch'))
    .option('--workers <n>', 'worker processes, points dealt out as they free up (each on the backend --device picks, sharing it)', positiveInt('--workers'))
    .option('--devices <ids>', 'GPUs to spread the points over, one worker each (e.g. 0,1)', deviceList('--devices'))
    .option('--torch <file>', "transformers' prefill of the same presets and lengths (tools/bench-torch.py --prefill)");
  showDefaults(addPolicyFlags(cmd), benchDefaults()).action(async (o) => {
      const cfg = benchConfig(o.config, { ...benchFlagValues(o), batch: o.batch, workers: o.workers, devices: o.devices });
      const b = bar('bench');
      const undo = onInterrupt((signal) => {
        b.stop();
        process.stderr.write(`quest: ${signal}: stopped; bench-latency writes its tables at the end, so nothing was written\n`);
      });
      const { rows, dir, copyGBps, meta } = await runBenchLatency(cfg, o.torch, argv, {
        start: (total) => b.start(total),
        step: (r) => b.increment(`${r.length} ${r.policy}${r.batch > 1 ? ` x${r.batch}` : ''}`),
        note: b.note,
        // The measuring is over: an interrupt from here on is Node's own.
        stop: () => {
          b.stop();
          undo();
        },
      });
      const copy = copyGBps.length ? ` | copy ${copyGBps.map((g) => g.toFixed(0)).join(', ')} GB/s (read + write)` : '';
      process.stdout.write(`\n${meta.device}${copy} | ${meta.date}\n\n${markdown(rows, LATENCY_COLUMNS)}\ntables: ${dir}\n`);
      warnProvenance(meta, path.join(dir, 'results.json'));
    });
}
