/** Records -> summary rows -> CSV, Markdown and JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { QuestError, errorMessage } from '../errors.js';
import type { EvalRecord } from '../run/records.js';

/** Creates an output folder (with its parents), or says which one and why it cannot be made. */
export function makeOutputDir(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new QuestError(`--output-path ${dir}: cannot create it (${errorMessage(err)})`);
  }
  return dir;
}

/** What a summary row sums up: one task's samples, a subgroup of them, or a benchmark's (or one category's) mean over its tasks. */
export type RowOf =
  | { kind: 'task'; task: string; benchmark: string; category: string | null }
  | { kind: 'group'; task: string; group: string }
  | { kind: 'average'; benchmark: string; category: string | null; tasks: number };

/** The row's name in the tables: the task, "task [group]", or "benchmark[: category] (avg of n)". */
export function rowLabel(of: RowOf): string {
  if (of.kind === 'task') return of.task;
  if (of.kind === 'group') return `${of.task} [${of.group}]`;
  return `${of.benchmark}${of.category ? `: ${of.category}` : ''} (avg of ${of.tasks})`;
}

export interface SummaryRow {
  /** rowLabel(of): the tables' first column, and the row's key in quest check. */
  task: string;
  of: RowOf;
  metric: string;
  length: number | null;
  policy: string;
  /** Tokens, or a fraction of each prompt ("0.05c"); null for dense. */
  budget: number | string | null;
  questionMode: string;
  /** Samples scored; `skipped` more ran but the benchmark leaves them out (Task.score's null). */
  n: number;
  skipped: number;
  /** Mean score in percent (NaN when none was scored); for perplexity, the perplexity of all the tokens together. */
  score: number;
  tokensPerStep: number | null;
  kvKiBPerStep: number | null;
  metaKiBPerStep: number | null;
  selectMsPerSample: number;
  prefillMsPerSample: number;
  decodeMsPerStep: number | null;
  /** Tokens generated per sample: mean and 90th percentile (null for perplexity and records from before they were kept). */
  genTokensMean: number | null;
  genTokensP90: number | null;
  /**
   * --diagnostics only (absent otherwise): each record's mean and worst tenth over its decode
   * steps x governed layers x KV heads (relative L2 error: mean, 90th percentile; recall of the
   * dense attention mass: mean, 10th percentile), averaged over the cell's records.
   */
  l2Mean?: number | null;
  l2P90?: number | null;
  recallMean?: number | null;
  recallP10?: number | null;
}

/** The diagnostics' fields of records and rows, in the tables' column order. */
const DIAGNOSTIC_FIELDS = ['l2Mean', 'l2P90', 'recallMean', 'recallP10'] as const;

type Diagnostics = Pick<SummaryRow, (typeof DIAGNOSTIC_FIELDS)[number]>;

/** A cell's diagnostics: each field averaged over its records (or rows) that carry one; nothing when the run had none. */
function diagnosticsOf(cells: Diagnostics[], has: boolean): Diagnostics {
  return has ? Object.fromEntries(DIAGNOSTIC_FIELDS.map((f) => [f, meanOrNull(cells.map((c) => c[f] ?? null))])) : {};
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
export const meanOrNull = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? mean(v) : null;
};

/** The q-th quantile of xs with numpy.percentile's default linear interpolation; null for none. */
export function quantile(xs: number[], q: number): number | null {
  if (!xs.length) return null;
  const v = [...xs].sort((a, b) => a - b);
  const pos = q * (v.length - 1);
  const lo = Math.floor(pos);
  return lo + 1 < v.length ? v[lo] + (pos - lo) * (v[lo + 1] - v[lo]) : v[lo];
}

/** A timing's median: the middle of a non-empty list, or the mean of its two middle values. */
export const median = (xs: number[]): number => quantile(xs, 0.5)!;

/** The order the user named policies and budgets in (--policies, --budgets): the rows keep it. */
export interface RowOrder {
  policies: string[];
  budgets: (number | string)[];
}

// Numbers inside names compare as numbers: "positions 64-303" before "positions 304-543".
const natural = new Intl.Collator('en', { numeric: true }).compare;

export function summarize(unordered: EvalRecord[], order?: RowOrder): SummaryRow[] {
  // In key order, so that one run, a resumed run and merged shards sum in the same order.
  const records = [...unordered].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const diagnosed = records.some((r) => r.diagnostics);
  type Nll = NonNullable<EvalRecord['nll']>;
  const groups = new Map<string, { of: RowOf; rs: EvalRecord[]; nll: Nll }>();
  const add = (of: RowOf, r: EvalRecord, nll: Nll = []) => {
    const k = JSON.stringify([of, r.length, r.policy, r.budget, r.questionMode]);
    const g = groups.get(k) ?? { of, rs: [], nll: [] };
    g.rs.push(r);
    g.nll.push(...nll);
    groups.set(k, g);
  };
  for (const r of records) {
    add({ kind: 'task', task: r.task, benchmark: r.benchmark, category: r.category ?? null }, r, r.nll);
    for (const g of r.groups ?? []) add({ kind: 'group', task: r.task, group: g }, r);
    for (const b of r.nll ?? []) add({ kind: 'group', task: r.task, group: `positions ${b.from}-${b.to - 1}` }, r, [b]);
  }
  const rows = [...groups.values()].map(({ of, rs, nll }): SummaryRow => {
    const r0 = rs[0];
    // Perplexity pools the likelihoods of all the tokens; other metrics average the samples.
    const tokens = nll.reduce((a, b) => a + b.tokens, 0);
    const scored = rs.flatMap((r) => (r.score === null ? [] : [r.score]));
    const score = tokens > 0 ? Math.exp(nll.reduce((a, b) => a + b.sum, 0) / tokens) : 100 * mean(scored);
    const kv = meanOrNull(rs.map((r) => r.stats.kvBytesPerStep));
    const generated = rs.flatMap((r) => (typeof r.generatedTokens === 'number' ? [r.generatedTokens] : []));
    const meta = meanOrNull(rs.map((r) => r.stats.metaBytesPerStep));
    return {
      task: rowLabel(of),
      of,
      metric: r0.metric,
      length: r0.length,
      policy: r0.policy,
      budget: r0.budget,
      questionMode: r0.questionMode,
      n: scored.length,
      skipped: rs.length - scored.length,
      score,
      tokensPerStep: meanOrNull(rs.map((r) => r.stats.tokensPerStep)),
      kvKiBPerStep: kv === null ? null : kv / 1024,
      metaKiBPerStep: meta === null ? null : meta / 1024,
      selectMsPerSample: mean(rs.map((r) => r.stats.selectMs)),
      prefillMsPerSample: mean(rs.map((r) => r.stats.prefillMs)),
      decodeMsPerStep: meanOrNull(rs.map((r) => r.stats.decodeMsPerStep)),
      genTokensMean: generated.length ? mean(generated) : null,
      genTokensP90: quantile(generated, 0.9),
      ...diagnosticsOf(rs.map((r) => r.diagnostics ?? {}), diagnosed),
    };
  });
  rows.push(...benchmarkAverages(rows));
  // Tasks first, then their subgroups, then the benchmark averages; within a task and
  // length, policies and budgets in the user's order (dense first without one).
  const kindOrder: Record<RowOf['kind'], number> = { task: 0, group: 1, average: 2 };
  const rank = (xs: readonly unknown[] | undefined, x: unknown) => (xs?.includes(x) ? xs.indexOf(x) : Infinity);
  const policy = (a: SummaryRow, b: SummaryRow) =>
    rank(order?.policies, a.policy) - rank(order?.policies, b.policy) || +(a.policy !== 'dense') - +(b.policy !== 'dense') || natural(a.policy, b.policy);
  const budget = (a: SummaryRow, b: SummaryRow) => rank(order?.budgets, a.budget) - rank(order?.budgets, b.budget) || natural(String(a.budget ?? 0), String(b.budget ?? 0));
  return rows.sort((a, b) => kindOrder[a.of.kind] - kindOrder[b.of.kind] || natural(a.task, b.task) || (a.length ?? 0) - (b.length ?? 0) || policy(a, b) || budget(a, b));
}

/**
 * A benchmark's own aggregates: the mean of its tasks' scores (RULER and LongBench average
 * their tasks), and for LongBench the mean within each category.
 */
function benchmarkAverages(rows: SummaryRow[]): SummaryRow[] {
  const groups = new Map<string, { benchmark: string; category: string | null; rs: SummaryRow[] }>();
  const add = (benchmark: string, category: string | null, r: SummaryRow) => {
    const k = JSON.stringify([benchmark, category, r.length, r.policy, r.budget, r.questionMode]);
    const g = groups.get(k) ?? { benchmark, category, rs: [] };
    g.rs.push(r);
    groups.set(k, g);
  };
  for (const r of rows) {
    // A task that is its own benchmark (passkey) has nothing to average.
    if (r.of.kind !== 'task' || r.of.benchmark === r.of.task) continue;
    add(r.of.benchmark, null, r);
    if (r.of.category) add(r.of.benchmark, r.of.category, r);
  }
  return [...groups.values()]
    .filter(({ rs }) => rs.length > 1)
    .map(({ benchmark, category, rs }): SummaryRow => ({
      ...rs[0],
      task: rowLabel({ kind: 'average', benchmark, category, tasks: rs.length }),
      of: { kind: 'average', benchmark, category, tasks: rs.length },
      // Labelled by what it averages: one metric, or the tasks' own metrics when they differ.
      metric: new Set(rs.map((r) => r.metric)).size === 1 ? rs[0].metric : `mean of ${rs.length} tasks' metrics`,
      n: rs.reduce((a, r) => a + r.n, 0),
      skipped: rs.reduce((a, r) => a + r.skipped, 0),
      score: mean(rs.map((r) => r.score)),
      tokensPerStep: meanOrNull(rs.map((r) => r.tokensPerStep)),
      kvKiBPerStep: meanOrNull(rs.map((r) => r.kvKiBPerStep)),
      metaKiBPerStep: meanOrNull(rs.map((r) => r.metaKiBPerStep)),
      selectMsPerSample: mean(rs.map((r) => r.selectMsPerSample)),
      prefillMsPerSample: mean(rs.map((r) => r.prefillMsPerSample)),
      decodeMsPerStep: meanOrNull(rs.map((r) => r.decodeMsPerStep)),
      genTokensMean: meanOrNull(rs.map((r) => r.genTokensMean)),
      genTokensP90: meanOrNull(rs.map((r) => r.genTokensP90)),
      ...diagnosticsOf(rs, 'l2Mean' in rs[0]),
    }));
}

const fmt = (v: number | null, digits = 1): string => (v === null || Number.isNaN(v) ? '-' : v.toFixed(digits));

export interface Column<R> {
  title: string;
  value: (r: R) => string;
}

export const EVAL_COLUMNS: Column<SummaryRow>[] = [
  { title: 'task', value: (r) => r.task },
  { title: 'length', value: (r) => String(r.length ?? '-') },
  { title: 'policy', value: (r) => r.policy },
  { title: 'budget', value: (r) => (r.budget === null ? 'all' : String(r.budget)) },
  { title: 'question', value: (r) => r.questionMode },
  { title: 'n', value: (r) => `${r.n}${r.skipped ? ` (+${r.skipped} skipped)` : ''}` },
  { title: 'score', value: (r) => fmt(r.score, r.metric.startsWith('perplexity') ? 2 : 1) },
  { title: 'metric', value: (r) => (r.metric.startsWith('perplexity') ? 'perplexity' : `${r.metric}, %`) },
  { title: 'tokens read/step/head', value: (r) => fmt(r.tokensPerStep) },
  { title: 'KV KiB/step', value: (r) => fmt(r.kvKiBPerStep) },
  { title: 'meta KiB/step', value: (r) => fmt(r.metaKiBPerStep) },
  { title: 'select ms/sample', value: (r) => fmt(r.selectMsPerSample, 2) },
  { title: 'prefill ms', value: (r) => fmt(r.prefillMsPerSample, 0) },
  { title: 'decode ms/step', value: (r) => fmt(r.decodeMsPerStep, 2) },
  { title: 'gen tokens mean', value: (r) => fmt(r.genTokensMean) },
  { title: 'gen tokens p90', value: (r) => fmt(r.genTokensP90) },
];

const DIAGNOSTIC_COLUMNS: Column<SummaryRow>[] = [
  { title: 'attn L2 err mean', value: (r) => fmt(r.l2Mean ?? null, 4) },
  { title: 'attn L2 err p90', value: (r) => fmt(r.l2P90 ?? null, 4) },
  { title: 'attn recall mean', value: (r) => fmt(r.recallMean ?? null, 4) },
  { title: 'attn recall p10', value: (r) => fmt(r.recallP10 ?? null, 4) },
];

/** The eval tables' columns: the diagnostics' too when the rows carry them (a run with --diagnostics). */
export const evalColumns = (rows: object[]): Column<SummaryRow>[] => (rows.some((r) => 'l2Mean' in r) ? [...EVAL_COLUMNS, ...DIAGNOSTIC_COLUMNS] : EVAL_COLUMNS);

export function markdown<R>(rows: R[], columns: Column<R>[]): string {
  const head = `| ${columns.map((c) => c.title).join(' | ')} |`;
  const rule = `|${columns.map(() => '---').join('|')}|`;
  return [head, rule, ...rows.map((r) => `| ${columns.map((c) => c.value(r)).join(' | ')} |`)].join('\n') + '\n';
}

export function csv<R extends object>(rows: R[]): string {
  return stringify(rows as Record<string, unknown>[], { header: true, cast: { number: (v: number) => String(v) } });
}

/** What a results.json (or a bench's rows.json) holds: its readers go by this field. */
export const RESULT_KINDS = ['eval', 'latency', 'attention', 'sweep', 'linear'] as const;
export type ResultKind = (typeof RESULT_KINDS)[number];

/** The kind a results file names; undefined for files from before files named one. `what` names the file in the error. */
export function namedKind(value: unknown, what: string): ResultKind | undefined {
  if (value === undefined) return undefined;
  if (!(RESULT_KINDS as readonly unknown[]).includes(value)) throw new QuestError(`${what}: kind ${JSON.stringify(value)} is not one of ${RESULT_KINDS.join(', ')}`);
  return value as ResultKind;
}

/** Files from before results named their kind: told apart by a field only rows of that kind have. */
export function kindOfRows(r0: object): ResultKind | null {
  return 'score' in r0 ? 'eval' : 'totalUs' in r0 ? 'attention' : 'decodeMsPerStep' in r0 ? 'latency' : 'stagedUs' in r0 ? 'linear' : null;
}

/** A finite number, else null (a field a row did not record). */
export const finiteOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Writes summary.csv, summary.md and results.json (which names its kind) into `dir`;
 * `csvFields` picks a row's csv columns (all its fields unless given).
 */
export function writeTables<R extends object>(
  dir: string,
  kind: ResultKind,
  rows: R[],
  columns: Column<R>[],
  meta: Record<string, unknown>,
  csvFields: (r: R) => object = (r) => r,
): void {
  makeOutputDir(dir);
  writeFileSync(path.join(dir, 'summary.csv'), csv(rows.map(csvFields)));
  const lines = Object.entries(meta)
    .filter(([, v]) => typeof v !== 'object' || v === null)
    .map(([k, v]) => `- ${k}: ${String(v)}`);
  writeFileSync(path.join(dir, 'summary.md'), `${markdown(rows, columns)}\n${lines.join('\n')}\n`);
  writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ kind, ...meta, rows }, null, 2) + '\n');
}

/** A bench's rows alone beside its tables, naming their kind: what quest check compares. */
export function writeRows(dir: string, kind: ResultKind, rows: object[]): void {
  writeFileSync(path.join(dir, 'rows.json'), JSON.stringify({ kind, rows }, null, 2) + '\n');
}
