import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { QuestError } from '../errors.js';
import { markdown, EVAL_COLUMNS } from '../report/tables.js';
import { openOutput, writeResults } from '../run/eval.js';
import { readRecords, type EvalRecord } from '../run/records.js';

/** Combines the outputs of shards (or of any runs of one configuration) into one result set. */
export function mergeCommand(program: Command): void {
  program
    .command('merge')
    .description('combine shard outputs (quest eval --shard i/n) into one result set; refuses runs of different configurations')
    .argument('<dirs...>', 'output folders of the shards')
    .requiredOption('--output-path <dir>', 'where the merged records and tables go')
    .action((dirs: string[], o: { outputPath: string }) => {
      let identity: Record<string, unknown> | null = null;
      let first = '';
      const byKey = new Map<string, EvalRecord>();
      for (const dir of dirs) {
        const runFile = path.join(dir, 'run.json');
        if (!existsSync(runFile)) throw new QuestError(`${dir}: not a quest eval output (no run.json)`);
        const id = JSON.parse(readFileSync(runFile, 'utf8')) as Record<string, unknown>;
        if (identity === null) {
          identity = id;
          first = dir;
        } else if (JSON.stringify(id) !== JSON.stringify(identity)) {
          const keys = [...new Set([...Object.keys(id), ...Object.keys(identity)])].filter((k) => JSON.stringify(id[k]) !== JSON.stringify(identity![k]));
          throw new QuestError(`refusing to merge: ${dir} and ${first} ran different configurations (${keys.join(', ')})`);
        }
        for (const r of readRecords(path.join(dir, 'samples.jsonl'))) if (!byKey.has(r.key)) byKey.set(r.key, r);
      }
      const out = path.resolve(o.outputPath);
      const existing = openOutput(out, identity!);
      if (existing.length) throw new QuestError(`--output-path ${out}: already holds records; merge into an empty folder`);
      const records = [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      writeFileSync(path.join(out, 'samples.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
      const rows = writeResults(out, records, { merged: dirs.map((d) => path.resolve(d)), date: new Date().toISOString(), config: identity });
      process.stdout.write(`${markdown(rows, EVAL_COLUMNS)}\nmerged ${records.length} records from ${dirs.length} folders into ${out}\n`);
    });
}
