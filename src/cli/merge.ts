import type { Command } from 'commander';
import { evalColumns, markdown } from '../report/tables.js';
import { runMerge } from '../run/merge.js';

export function mergeCommand(program: Command): void {
  program
    .command('merge')
    .description('combine shard outputs (quest eval --shard i/n) into one result set; refuses runs of different configurations, and an incomplete shard set without --allow-partial')
    .argument('<dirs...>', 'output folders of the shards')
    .requiredOption('--output-path <dir>', 'where the merged records and tables go')
    .option('--allow-partial', 'merge even when shards are missing or unfinished (the tables then cover part of the run)')
    .action((dirs: string[], o: { outputPath: string; allowPartial?: boolean }) => {
      const m = runMerge(dirs, o.outputPath, o.allowPartial ?? false, (message) => process.stderr.write(`quest: ${message}\n`));
      process.stdout.write(`${markdown(m.rows, evalColumns(m.rows))}\nmerged ${m.records} records from ${dirs.length} folders into ${m.outputDir}\n`);
    });
}
