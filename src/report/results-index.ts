/**
 * results/RESULTS.md and its plots, made from the results.json files under results/: one
 * section per kind of run, each table linked to its results.json and said where it came from.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import { readJson } from '../model/config.js';
import { provenanceWarning } from './metadata.js';
import { linePlotsSvg, logTicks, type Panel, type Series } from './plots.js';
import { evalColumns, finiteOrNull, kindOfRows, markdown, namedKind, type Column, type ResultKind } from './tables.js';

type Row = Record<string, unknown>;

/** The tables bench-attention and bench-latency print (their runners own them). */
export interface BenchColumns {
  attention: Column<any>[];
  latency: Column<any>[];
  sweep: Column<any>[];
  linear: Column<any>[];
}

interface Entry {
  /** The results.json's folder, relative to the results folder, with '/'. */
  dir: string;
  kind: ResultKind;
  meta: Row;
  rows: Row[];
}

const NOT_RECORDED = 'not recorded';
const PLOTS = 'plots';
const SECTIONS: Record<ResultKind, string> = {
  eval: 'Accuracy (`quest eval`)',
  attention: 'Decode attention, one layer (`quest bench-attention`)',
  latency: 'Prefill and decode step (`quest bench-latency`)',
  sweep: 'A whole sweep, shared and one cell at a time (`quest bench-eval`)',
  linear: 'Linear layers of a decode step, each alone (`quest bench-linear`)',
};

/** Every file under `dir`, relative with '/', in sorted order. */
function walk(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel))
    .sort()
    .flatMap((f) => {
      const r = rel ? `${rel}/${f}` : f;
      return statSync(path.join(dir, r)).isDirectory() ? walk(dir, r) : [r];
    });
}

/** The kind the file names; files written before files named one, by their rows' fields. */
function kindOf(file: string, meta: Row, rows: Row[]): ResultKind {
  const kind = namedKind(meta.kind, file) ?? kindOfRows(rows[0]);
  if (!kind) throw new QuestError(`${file}: not the results.json of a quest eval or bench command`);
  return kind;
}

function readEntry(root: string, rel: string): Entry {
  const file = path.join(root, rel);
  const { rows, ...meta } = readJson(file, 'results.json') as Row;
  if (!Array.isArray(rows) || rows.length === 0) throw new QuestError(`${file}: no rows (not a finished quest run's results.json)`);
  const bad = rows.findIndex((r) => typeof r !== 'object' || r === null || Array.isArray(r));
  if (bad >= 0) throw new QuestError(`${file}: row ${bad + 1} is not an object`);
  // Fields an older quest did not record read as null: shown '-', never filled in.
  const nullable = (rows as Row[]).map((r) => new Proxy(r, { get: (t, k) => (typeof k === 'string' && !(k in t) ? null : Reflect.get(t, k)) }));
  return { dir: path.posix.dirname(rel), kind: kindOf(file, meta, nullable), meta, rows: nullable };
}

const text = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);
const date = (m: Row) => text(m.date)?.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC') ?? NOT_RECORDED;
const device = (m: Row) => {
  const d = text(m.device) ?? NOT_RECORDED;
  return m.backend === 'cpu' && text(m.cpu) ? `${d}, ${m.cpu}` : d;
};
/** The commit, short, and whether the tree had changes beyond it. */
const codeShort = (m: Row) => {
  const sha = text(m.gitSha)?.slice(0, 7) ?? NOT_RECORDED;
  return m.gitDirty === false ? sha : m.gitDirty === true ? `${sha} + uncommitted changes` : `${sha}, tree state ${NOT_RECORDED}`;
};
const code = (m: Row) => provenanceWarning(m, 'the run') ?? `${text(m.gitSha) ?? `commit ${NOT_RECORDED}`}, a clean tree`;
const model = (m: Row) => text((m.config as Row | undefined)?.model) ?? text(m.model);

/** A table of the columns that hold a value in some row. */
function table<R>(rows: R[], columns: Column<R>[]): string {
  return markdown(rows, columns.filter((c) => rows.some((r) => c.value(r) !== '-')));
}

const kTokens = (v: number) => (v >= 1024 ? `${v / 1024}K` : String(v));
const seriesName = (r: Row) => `${r.policy}${r.budget ? ` ${r.budget}` : ''}`;

/** Series of (x, y) per name, in the rows' order; rows without a y are left out. */
function series(rows: Row[], name: (r: Row) => string, x: (r: Row) => number, y: (r: Row) => number | null): Series[] {
  const by = new Map<string, Series>();
  for (const r of rows) {
    const v = y(r);
    if (v === null) continue;
    const s = by.get(name(r)) ?? { name: name(r), points: [] };
    s.points.push({ x: x(r), y: v });
    by.set(s.name, s);
  }
  return [...by.values()].map((s) => ({ ...s, points: s.points.sort((a, b) => a.x - b.x) }));
}

/** Accuracy against budget, a panel per task and length; dense (no budget) as a dashed line. */
function accuracyPlot(e: Entry): string | null {
  const rows = e.rows.filter((r) => !String(r.metric).startsWith('perplexity') && finiteOrNull(r.score) !== null);
  const budgets = [...new Set(rows.map((r) => finiteOrNull(r.budget)).filter((b): b is number => b !== null))].sort((a, b) => a - b);
  if (budgets.length < 2) return null;
  const modes = new Set(rows.map((r) => r.questionMode));
  const panelOf = (r: Row) => `${r.task}, ${kTokens(Number(r.length))}${modes.size > 1 ? `, question ${r.questionMode}` : ''}`;
  const panels: Panel[] = [...new Set(rows.map(panelOf))].map((title) => {
    const mine = rows.filter((r) => panelOf(r) === title);
    const sparse = series(mine.filter((r) => r.budget !== null), (r) => String(r.policy), (r) => Number(r.budget), (r) => finiteOrNull(r.score));
    const dense = series(mine.filter((r) => r.budget === null), (r) => `${r.policy} (all)`, () => budgets[0], (r) => finiteOrNull(r.score)).map((s) => ({ ...s, dashed: true, across: true }));
    return {
      title,
      x: { title: 'budget (tokens read/step/head)', log: true, ticks: budgets, label: String },
      y: { title: 'score (%)', log: false, ticks: [0, 25, 50, 75, 100], label: String },
      // Dense last: drawn over a policy that matches it, not hidden under it.
      series: [...sparse, ...dense],
    };
  });
  return linePlotsSvg(`${e.dir}: accuracy against budget`, panels);
}

/** Time against context length, a series per policy and budget (and torch's dense, where timed). */
function latencyPlot(e: Entry): string | null {
  const lengths = [...new Set(e.rows.map((r) => Number(r.length)))].sort((a, b) => a - b);
  if (lengths.length < 2) return null;
  const attention = e.kind === 'attention';
  const ours = series(e.rows, seriesName, (r) => Number(r.length), (r) => finiteOrNull(attention ? r.totalUs : r.decodeMsPerStep));
  const torch = attention ? series(e.rows.filter((r) => r.policy === 'dense'), () => 'torch SDPA (dense)', (r) => Number(r.length), (r) => finiteOrNull(r.torchUs)).map((s) => ({ ...s, dashed: true })) : [];
  const all = [...ours, ...torch];
  const ys = all.flatMap((s) => s.points.map((p) => p.y));
  const unit = attention ? 'step (µs)' : 'decode (ms/token)';
  const panel: Panel = {
    title: attention ? "one layer's decode attention" : `${path.basename(model(e.meta) ?? `model ${NOT_RECORDED}`)}, decode step`,
    x: { title: 'context (tokens)', log: true, ticks: lengths, label: kTokens },
    y: { title: unit, log: true, ticks: logTicks(Math.min(...ys), Math.max(...ys)), label: String },
    series: all,
  };
  return linePlotsSvg(`${e.dir}: ${attention ? 'attention step' : 'decode step'} against context`, [panel]);
}

const plotFile = (e: Entry) => `${PLOTS}/${e.dir.split('/').join('--')}.svg`;
const link = (rel: string) => `[${rel}](${rel})`;

function section(e: Entry, plot: string | null, columns: BenchColumns, files: string[]): string {
  const m = e.meta;
  const lines = [
    `### ${e.dir}`,
    '',
    `- results: ${link(`${e.dir}/results.json`)}`,
    `- device: ${device(m)}`,
    `- date: ${date(m)}`,
    `- command: ${text(m.command) ? `\`${m.command}\`` : NOT_RECORDED}`,
    `- code: ${code(m)}`,
  ];
  const mdl = model(m);
  if (e.kind !== 'attention') lines.push(`- model: ${mdl ? path.basename(mdl) : NOT_RECORDED}`);
  const copy = [m.copyGBps].flat().filter((v): v is number => typeof v === 'number');
  if (copy.length) lines.push(`- device copy bandwidth in the same run: ${copy.map((g) => g.toFixed(0)).join(', ')} GB/s`);
  const shape = m.shape as Row | undefined;
  if (shape) lines.push(`- shape: ${shape.heads} query heads × ${shape.headDim}, ${shape.kvHeads} KV heads, page ${shape.pageSize}`);
  const svgs = files.filter((f) => path.posix.dirname(f) === e.dir && f.endsWith('.svg'));
  if (svgs.length) lines.push(`- the run's own plots: ${svgs.map(link).join(', ')}`);
  if (plot) lines.push('', `![${e.dir}](${plot})`);
  const cols: Column<any>[] = e.kind === 'eval' ? evalColumns(e.rows) : columns[e.kind];
  lines.push('', table(e.rows, cols));
  return lines.join('\n');
}

/** The index's text and its plots (file name under the results folder -> SVG). */
export function resultsIndex(root: string, columns: BenchColumns): { markdown: string; plots: Map<string, string> } {
  const files = walk(root).filter((f) => !f.startsWith(`${PLOTS}/`));
  // Newest first; a run that recorded no date last.
  const byDate = (a: Entry, b: Entry) => (text(b.meta.date) ?? '').localeCompare(text(a.meta.date) ?? '') || a.dir.localeCompare(b.dir);
  const entries = files.filter((f) => path.posix.basename(f) === 'results.json').map((f) => readEntry(root, f)).sort(byDate);
  const plots = new Map<string, string>();
  const sections: string[] = [];
  for (const kind of Object.keys(SECTIONS) as ResultKind[]) {
    const mine = entries.filter((e) => e.kind === kind);
    if (!mine.length) continue;
    sections.push(`## ${SECTIONS[kind]}`);
    for (const e of mine) {
      const svg = kind === 'eval' ? accuracyPlot(e) : kind === 'sweep' || kind === 'linear' ? null : latencyPlot(e);
      if (svg) plots.set(plotFile(e), svg);
      sections.push(section(e, svg ? plotFile(e) : null, columns, files));
    }
  }
  // Top-level folders with no results.json: what they hold, linked.
  const tops = [...new Set(files.filter((f) => f.includes('/')).map((f) => f.split('/')[0]))];
  const bare = tops.filter((t) => !entries.some((e) => e.dir === t || e.dir.startsWith(`${t}/`)));
  if (bare.length) {
    sections.push('## Runs recorded as logs only (no results.json: device, date and code as the logs state them)');
    for (const t of bare) sections.push(`- ${t}/: ${files.filter((f) => f.startsWith(`${t}/`)).map(link).join(', ')}`);
  }
  const overview = markdown(entries, [
    { title: 'result', value: (e) => link(`${e.dir}/results.json`) },
    { title: 'kind', value: (e) => e.kind },
    { title: 'device', value: (e) => device(e.meta) },
    { title: 'date', value: (e) => date(e.meta) },
    { title: 'code', value: (e) => codeShort(e.meta) },
  ]);
  const head = [
    '# Results',
    [
      'Generated by `quest results` from the results.json files in this folder: edit the runs, not this file, then run it again.',
      "Each table below links to its results.json (every row and the run's metadata). A run whose tree had uncommitted",
      'changes cannot be tied to a commit; each entry says so. How the GPU decode step got here: [docs/quest-step.md](../docs/quest-step.md).',
    ].join('\n'),
    overview,
  ];
  return { markdown: [...head, ...sections].join('\n\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n', plots };
}

/** Writes RESULTS.md and plots/ into `out` (stale plots removed); returns the files written. */
export function writeResultsIndex(root: string, out: string, columns: BenchColumns): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new QuestError(`--from ${root}: no such folder`);
  const { markdown: md, plots } = resultsIndex(root, columns);
  // Stale plots go, and nothing else: only the SVGs a run of this command could have written.
  const dir = path.join(out, PLOTS);
  if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.endsWith('.svg')) rmSync(path.join(dir, f), { force: true });
  mkdirSync(dir, { recursive: true });
  const written = [path.join(out, 'RESULTS.md')];
  writeFileSync(written[0], md);
  for (const [f, svg] of plots) {
    writeFileSync(path.join(out, f), svg);
    written.push(path.join(out, f));
  }
  return written;
}
