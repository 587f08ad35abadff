import path from 'node:path';
import type { Command } from 'commander';
import { PRESETS } from '../model/presets.js';
import { warnProvenance } from '../report/metadata.js';
import { markdown } from '../report/tables.js';
import { LINEAR_COLUMNS, runLinearBench } from '../run/bench-linear.js';
import { intList, nonNegativeInt, positiveInt } from './options.js';

export function benchLinearCommand(program: Command, argv: string[]): void {
  program
    .command('bench-linear')
    .description("GPU decode step's linear layers, each timed alone (the GEMV, 4-bit or 16-bit), against the copy bandwidth")
    .option('--model <dir|preset>', `model folder (its shapes and quantization), or a preset: ${Object.keys(PRESETS).join(', ')}`, 'llama-2-7b-awq')
    .option('--batch <rows>', 'decode batch sizes (rows a GEMV takes, 1 to 8)', intList('--batch'), [1])
    .option('--no-layers', "skip the row of every layer's projections back to back (the model's layers, each its own weights: its memory)")
    .option('--repeats <n>', 'timed replays; the median is reported', positiveInt('--repeats'), 50)
    .option('--seed <n>', 'seed of the random weights', nonNegativeInt('--seed'), 0)
    .option('--output-path <dir>', 'where the tables go')
    .action(async (o) => {
      const res = await runLinearBench({ model: o.model, batch: o.batch, layers: o.layers, repeats: o.repeats, seed: o.seed, outputPath: o.outputPath }, argv);
      process.stdout.write(`\n${res.device} | copy ${res.copyGBps.toFixed(0)} GB/s (read + write) | ${res.rows[0]?.model} | ${res.meta.date}\n\n${markdown(res.rows, LINEAR_COLUMNS)}\ntables: ${res.dir}\n`);
      warnProvenance(res.meta, path.join(res.dir, 'results.json'));
    });
}
