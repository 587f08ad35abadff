import type { Command } from 'commander';
import { QuestError } from '../errors.js';
import { markdown, type Column } from '../report/tables.js';
import { runCheck, type Move } from '../run/check.js';
import { atLeast, fraction } from './options.js';

const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(2));
const COLUMNS: Column<Move>[] = [
  { title: 'row', value: (m) => m.row },
  { title: 'metric', value: (m) => m.metric },
  { title: 'baseline', value: (m) => fmt(m.baseline) },
  { title: 'current', value: (m) => fmt(m.current) },
  { title: 'change', value: (m) => m.change },
  { title: 'status', value: (m) => m.status },
];

export function checkCommand(program: Command): void {
  program
    .command('check')
    .description('compare a run with a committed baseline; exit 1 on a regression, a suspect rise, a change in what is read, or a row in one run only (a CI gate)')
    .requiredOption('--baseline <file>', 'baseline results.json / rows.json (or its folder)')
    .requiredOption('--current <dir>', 'the output folder (or file) of the run to check')
    .option('--max-accuracy-drop <points>', 'largest allowed drop of a score, in points', atLeast('--max-accuracy-drop', 0), 2)
    .option('--max-accuracy-rise <points>', 'largest allowed rise of a score, in points (default: --max-accuracy-drop)', atLeast('--max-accuracy-rise', 0))
    .option('--max-latency-ratio <ratio>', 'largest allowed current / baseline time; a perplexity may move by this ratio either way', atLeast('--max-latency-ratio', 1), 1.15)
    .option('--max-read-change <fraction>', 'largest allowed relative change of tokens, KV and metadata bytes read per step', fraction('--max-read-change'), 0.01)
    .option('--allow-config-change', 'compare the rows both runs have even when their configurations differ')
    .action((o: { baseline: string; current: string; maxAccuracyDrop: number; maxAccuracyRise?: number; maxLatencyRatio: number; maxReadChange: number; allowConfigChange?: boolean }) => {
      const { moves, notes, failed } = runCheck(o.baseline, o.current, {
        maxAccuracyDrop: o.maxAccuracyDrop,
        maxAccuracyRise: o.maxAccuracyRise ?? o.maxAccuracyDrop,
        maxLatencyRatio: o.maxLatencyRatio,
        maxReadChange: o.maxReadChange,
        allowConfigChange: o.allowConfigChange ?? false,
      });
      for (const n of notes) process.stderr.write(`quest: ${n}\n`);
      // Unmoved rows are only counted: what moved, and every failure, is shown.
      const shown = moves.filter((m) => m.status !== 'ok' || m.baseline !== m.current);
      if (shown.length) process.stdout.write(markdown(shown, COLUMNS));
      process.stdout.write(`\n${moves.length - failed} passed, ${failed} failed\n`);
      if (failed) throw new QuestError(`check: ${failed} failure(s) against ${o.baseline}`);
    });
}
