import path from 'node:path';
import type { Command } from 'commander';
import { projectRoot } from '../config/index.js';
import { writeResultsIndex } from '../report/results-index.js';
import { ATTENTION_COLUMNS as attention } from '../run/bench-attention.js';
import { LATENCY_COLUMNS as latency } from '../run/bench-latency.js';
import { SWEEP_COLUMNS as sweep } from '../run/bench-eval.js';
import { LINEAR_COLUMNS as linear } from '../run/bench-linear.js';

/** Regenerates the published index of results: RESULTS.md and plots/, from the results.json files. */
export function resultsCommand(program: Command): void {
  program
    .command('results')
    .description('write RESULTS.md (a table per results.json, with its device, date, command and commit) and plots/ (SVG) from the runs in results/')
    .option('--from <dir>', 'the folder of published runs (default: results/ of this checkout)')
    .option('--output-path <dir>', 'where RESULTS.md and plots/ go (default: the --from folder)')
    .action((o: { from?: string; outputPath?: string }) => {
      const from = path.resolve(o.from ?? path.join(projectRoot, 'results'));
      const files = writeResultsIndex(from, path.resolve(o.outputPath ?? from), { attention, latency, sweep, linear });
      process.stdout.write(`${files.join('\n')}\n`);
    });
}
