import path from 'node:path';
import type { Command } from 'commander';
import { warnProvenance } from '../report/metadata.js';
import { markdown } from '../report/tables.js';
import { ATTENTION_COLUMNS, runAttentionBench } from '../run/bench-attention.js';
import type { ParityCase } from '../run/attention-check.js';
import { intList, nonNegativeInt, positiveInt } from './options.js';

/** --check's cases, one line each, and the count when all passed (a failure stops the run with its own error). */
function printParity(cases: ParityCase[]): void {
  for (const c of cases)
    process.stdout.write(
      `parity ${JSON.stringify(c.shape)} length ${c.length} budget ${c.budget}${c.softcap ? ` softcap ${c.softcap}` : ''} seed ${c.seed}: ${c.failures.length ? `FAIL ${c.failures.join('; ')}` : 'ok'} ${JSON.stringify(c.result)}\n`,
    );
  if (cases.every((c) => c.failures.length === 0)) process.stdout.write(`${cases.length} passed, 0 failed\n`);
}

export function benchAttentionCommand(program: Command, argv: string[]): void {
  program
    .command('bench-attention')
    .description('GPU decode attention per step: dense vs Quest (estimate, top-k, sparse attention), with the bandwidth floor and torch beside')
    .option('--heads <n>', 'query heads', positiveInt('--heads'), 32)
    .option('--kv-heads <n>', 'KV heads (GQA when fewer than --heads)', positiveInt('--kv-heads'))
    .option('--head-dim <n>', 'head_dim, one the GPU kernels are built for (a wrong one is named with the list)', positiveInt('--head-dim'), 128)
    .option('--lengths <tokens>', 'context lengths', intList('--lengths'), [4096, 8192, 16384, 32768, 65536, 131072])
    .option('--budgets <tokens>', 'Quest budgets', intList('--budgets'), [2048])
    .option('--repeats <n>', 'timed replays; the median is reported', positiveInt('--repeats'), 50)
    .option('--seed <n>', 'seed of the random cache', nonNegativeInt('--seed'), 0)
    .option('--torch <file>', 'torch timings of the same shapes (tools/bench-torch.py)')
    .option('--output-path <dir>', 'where the tables go')
    .option('--check', 'first check every kernel against the CPU backend on fresh random inputs; stop on a mismatch')
    .action(async (o) => {
      const shape = { heads: o.heads, kvHeads: o.kvHeads ?? o.heads, headDim: o.headDim, pageSize: 16 };
      const res = await runAttentionBench(
        { shape, lengths: o.lengths, budgets: o.budgets, repeats: o.repeats, seed: o.seed, torch: o.torch, outputPath: o.outputPath, check: o.check },
        argv,
        printParity,
      );
      process.stdout.write(
        `\n${res.device} | copy ${res.copyGBps.toFixed(0)} GB/s (read + write) | ${shape.heads} heads x ${shape.headDim}, ${shape.kvHeads} KV heads, fp16, page 16 | ${res.meta.date}\n\n${markdown(res.rows, ATTENTION_COLUMNS)}\ntables: ${res.dir}\n`,
      );
      warnProvenance(res.meta, path.join(res.dir, 'results.json'));
    });
}
