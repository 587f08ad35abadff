import path from 'node:path';
import type { Command } from 'commander';
import { benchConfig, benchDefaults } from '../config/index.js';
import { warnProvenance } from '../report/metadata.js';
import { markdown } from '../report/tables.js';
import { SWEEP_COLUMNS, runBenchEval } from '../run/bench-eval.js';
import { addBenchFlags, addPolicyFlags, benchFlagValues, showDefaults } from './options.js';

export function benchEvalCommand(program: Command, argv: string[]): void {
  const cmd = program
    .command('bench-eval')
    .description("seconds per sample of a whole sweep (every policy x budget) on random tokens: eval's shared prefill and batched decode beside one cell at a time");
  addBenchFlags(cmd, { decodeSteps: 'tokens each cell generates', outputPath: 'where the tables go (default: a new runs/bench-eval-<model>-<time>)' });
  showDefaults(addPolicyFlags(cmd), benchDefaults()).action(async (o) => {
    const cfg = benchConfig(o.config, benchFlagValues(o));
    const { rows, dir, meta } = await runBenchEval(cfg, argv, {
      note: (m) => process.stderr.write(`quest: ${m}\n`),
      step: (r) => process.stderr.write(`bench-eval: ${r.length} tokens, ${r.cells} cells done\n`),
    });
    process.stdout.write(`\n${meta.device} | ${meta.date}\n\n${markdown(rows, SWEEP_COLUMNS)}\ntables: ${dir}\n`);
    warnProvenance(meta, path.join(dir, 'results.json'));
  });
}
