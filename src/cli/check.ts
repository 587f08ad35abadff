import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { QuestError } from '../errors.js';
import { markdown, type Column } from '../report/tables.js';

type Row = Record<string, unknown>;

/** What a compared metric is: accuracy (points, higher is better) or a cost (ratio, lower is better). */
interface Metric {
  field: string;
  kind: 'accuracy' | 'cost';
}

export interface Move {
  row: string;
  metric: string;
  baseline: number | null;
  current: number | null;
  change: string;
  regression: boolean;
}

/** The rows of an eval results.json, a bench-latency rows.json or a bench-attention rows.json. */
function readRows(file: string, flag: string): { rows: Row[]; kind: 'eval' | 'latency' | 'attention' } {
  // A folder: a bench's rows.json (the measured fields), else an eval's results.json.
  const target = existsSync(file) && statSync(file).isDirectory() ? (['rows.json', 'results.json'].map((f) => path.join(file, f)).find((f) => existsSync(f)) ?? path.join(file, 'results.json')) : file;
  if (!existsSync(target)) throw new QuestError(`${flag} ${file}: no such file (a results.json or rows.json of quest)`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(target, 'utf8'));
  } catch {
    throw new QuestError(`${flag} ${target}: not valid JSON`);
  }
  const rows = (Array.isArray(data) ? data : (data as { rows?: unknown }).rows) as Row[] | undefined;
  if (!Array.isArray(rows) || rows.length === 0) throw new QuestError(`${flag} ${target}: holds no result rows`);
  const r0 = rows[0];
  const kind = 'score' in r0 ? 'eval' : 'totalUs' in r0 ? 'attention' : 'decodeMsPerStep' in r0 ? 'latency' : null;
  if (!kind) throw new QuestError(`${flag} ${target}: rows of an unknown kind`);
  return { rows, kind };
}

const keyOf = (r: Row, kind: string) =>
  kind === 'eval' ? `${r.task} L${r.length} ${r.policy}@${r.budget ?? 'all'} ${r.questionMode}` : `${kind === 'latency' ? `${r.model} ` : ''}L${r.length} ${r.policy}@${r.budget || 'all'}`;

const METRICS: Record<string, Metric[]> = {
  eval: [{ field: 'score', kind: 'accuracy' }],
  latency: [
    { field: 'decodeMsPerStep', kind: 'cost' },
    { field: 'prefillMs', kind: 'cost' },
  ],
  attention: [{ field: 'totalUs', kind: 'cost' }],
};

export function compare(baseline: Row[], current: Row[], kind: string, maxDrop: number, maxRatio: number): Move[] {
  const cur = new Map(current.map((r) => [keyOf(r, kind), r]));
  const moves: Move[] = [];
  for (const b of baseline) {
    const key = keyOf(b, kind);
    const c = cur.get(key);
    for (const m of METRICS[kind]) {
      const perplexity = String(b.metric ?? '').startsWith('perplexity');
      const bv = b[m.field] as number;
      const cv = c ? (c[m.field] as number) : null;
      if (cv === null) {
        moves.push({ row: key, metric: m.field, baseline: bv, current: null, change: 'missing', regression: true });
        continue;
      }
      if (m.kind === 'accuracy' && !perplexity) {
        const d = cv - bv;
        moves.push({ row: key, metric: m.field, baseline: bv, current: cv, change: `${d >= 0 ? '+' : ''}${d.toFixed(1)} pts`, regression: d < -maxDrop });
      } else {
        const ratio = cv / bv;
        moves.push({ row: key, metric: perplexity ? 'perplexity' : m.field, baseline: bv, current: cv, change: `x${ratio.toFixed(3)}`, regression: ratio > maxRatio });
      }
    }
  }
  return moves;
}

const COLUMNS: Column<Move>[] = [
  { title: 'row', value: (m) => m.row },
  { title: 'metric', value: (m) => m.metric },
  { title: 'baseline', value: (m) => (m.baseline === null ? '-' : m.baseline.toFixed(2)) },
  { title: 'current', value: (m) => (m.current === null ? '-' : m.current.toFixed(2)) },
  { title: 'change', value: (m) => m.change },
  { title: 'status', value: (m) => (m.regression ? 'REGRESSION' : 'ok') },
];

export function checkCommand(program: Command): void {
  program
    .command('check')
    .description('compare a run with a committed baseline; exit 1 on a regression (a CI gate)')
    .requiredOption('--baseline <file>', 'baseline results.json / rows.json (or its folder)')
    .requiredOption('--current <dir>', 'the output folder (or file) of the run to check')
    .option('--max-accuracy-drop <points>', 'largest allowed drop of a score, in points', (v) => Number(v), 2)
    .option('--max-latency-ratio <ratio>', 'largest allowed current / baseline time (and perplexity)', (v) => Number(v), 1.15)
    .action((o: { baseline: string; current: string; maxAccuracyDrop: number; maxLatencyRatio: number }) => {
      if (!(o.maxAccuracyDrop >= 0)) throw new QuestError('--max-accuracy-drop: must be a number >= 0');
      if (!(o.maxLatencyRatio >= 1)) throw new QuestError('--max-latency-ratio: must be a number >= 1');
      const base = readRows(o.baseline, '--baseline');
      const cur = readRows(o.current, '--current');
      if (base.kind !== cur.kind) throw new QuestError(`--current holds ${cur.kind} rows but --baseline holds ${base.kind} rows`);
      const moves = compare(base.rows, cur.rows, base.kind, o.maxAccuracyDrop, o.maxLatencyRatio);
      const bad = moves.filter((m) => m.regression);
      process.stdout.write(markdown(moves, COLUMNS));
      process.stdout.write(`\n${moves.length - bad.length} passed, ${bad.length} failed\n`);
      if (bad.length) throw new QuestError(`check: ${bad.length} regression(s) against ${o.baseline}`);
    });
}
