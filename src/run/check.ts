/**
 * The regression gate: a run against a committed baseline, row by row. Scores may neither
 * drop nor rise beyond a tolerance (a sparse policy suddenly scoring like dense is as
 * suspect as one that breaks), times may not rise, tokens and bytes read per step (fixed
 * for a fixed configuration) may not move, and every row must be in both runs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import { provenanceWarning, type GitState } from '../report/metadata.js';
import { finiteOrNull, kindOfRows, namedKind, type ResultKind } from '../report/tables.js';

type Row = Record<string, unknown>;

/** A run's rows and, where its results.json is there, its metadata (git state, configuration). */
export interface RunFile {
  file: string;
  kind: ResultKind;
  rows: Row[];
  meta: Row | null;
}

export interface CheckLimits {
  /** Points a score may drop, and rise. */
  maxAccuracyDrop: number;
  maxAccuracyRise: number;
  /** current / baseline a time (or a perplexity) may reach; a perplexity may not fall below its inverse either. */
  maxLatencyRatio: number;
  /** Relative change allowed in tokens and bytes read per step. */
  maxReadChange: number;
  /** Compare the rows of runs whose configurations differ instead of refusing. */
  allowConfigChange: boolean;
}

export type Status = 'ok' | 'REGRESSION' | 'RISE' | 'FALL' | 'CHANGED' | 'NEW' | 'MISSING';

export interface Move {
  row: string;
  metric: string;
  baseline: number | null;
  current: number | null;
  change: string;
  status: Status;
}

export interface CheckResult {
  moves: Move[];
  /** Lines to show before the table: provenance warnings, what was not compared and why. */
  notes: string[];
  failed: number;
}

/** accuracy: points (or a perplexity ratio); time: a ratio that may only grow so far; read: a count that must stay put. */
type MetricKind = 'accuracy' | 'time' | 'read';
const METRICS: Record<ResultKind, { field: string; kind: MetricKind }[]> = {
  eval: [
    { field: 'score', kind: 'accuracy' },
    { field: 'tokensPerStep', kind: 'read' },
    { field: 'kvKiBPerStep', kind: 'read' },
    { field: 'metaKiBPerStep', kind: 'read' },
  ],
  latency: [
    { field: 'decodeMsPerStep', kind: 'time' },
    { field: 'prefillMs', kind: 'time' },
    { field: 'tokensPerStep', kind: 'read' },
    { field: 'kvKiBPerStep', kind: 'read' },
  ],
  attention: [
    { field: 'totalUs', kind: 'time' },
    { field: 'tokensRead', kind: 'read' },
    { field: 'kvBytes', kind: 'read' },
    { field: 'metaBytes', kind: 'read' },
  ],
  sweep: [
    { field: 'sharedS', kind: 'time' },
    { field: 'singleS', kind: 'time' },
  ],
  linear: [
    { field: 'us', kind: 'time' },
    { field: 'bytes', kind: 'read' },
  ],
};

function readJson(file: string, flag: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new QuestError(`${flag} ${file}: not valid JSON`);
  }
}


/** The rows of an eval results.json, a bench-latency rows.json or a bench-attention rows.json (or their folder). */
export function readRun(file: string, flag: string): RunFile {
  // A folder: a bench's rows.json (the measured fields), else an eval's results.json.
  const target = existsSync(file) && statSync(file).isDirectory() ? (['rows.json', 'results.json'].map((f) => path.join(file, f)).find((f) => existsSync(f)) ?? path.join(file, 'results.json')) : file;
  if (!existsSync(target)) throw new QuestError(`${flag} ${file}: no such file (a results.json or rows.json of quest)`);
  const data = readJson(target, flag);
  if (typeof data !== 'object' || data === null) throw new QuestError(`${flag} ${target}: not a results.json or rows.json of quest`);
  // A rows.json is the rows alone: a list, or (since files name their kind) {kind, rows}.
  const rowsOnly = Array.isArray(data) || path.basename(target) === 'rows.json';
  const rows = (Array.isArray(data) ? data : (data as { rows?: unknown }).rows) as Row[] | undefined;
  if (!Array.isArray(rows) || rows.length === 0) throw new QuestError(`${flag} ${target}: holds no result rows`);
  const bad = rows.findIndex((r) => typeof r !== 'object' || r === null || Array.isArray(r));
  if (bad >= 0) throw new QuestError(`${flag} ${target}: row ${bad + 1} is not an object`);
  const kind = (Array.isArray(data) ? undefined : namedKind((data as { kind?: unknown }).kind, `${flag} ${target}`)) ?? kindOfRows(rows[0]);
  if (!kind) throw new QuestError(`${flag} ${target}: rows of an unknown kind`);
  // A bench's rows.json has its metadata in the results.json written beside it.
  const beside = path.join(path.dirname(target), 'results.json');
  const metaData = rowsOnly ? (existsSync(beside) ? readJson(beside, flag) : null) : data;
  const { rows: _rows, kind: _kind, ...meta } = (metaData ?? {}) as Row;
  return { file: target, kind, rows, meta: metaData ? meta : null };
}

const keyOf = (r: Row, kind: ResultKind) => {
  if (kind === 'eval') return `${r.task} L${r.length} ${r.policy}@${r.budget ?? 'all'} ${r.questionMode}`;
  if (kind === 'sweep') return `${r.model} L${r.length} ${r.cells} cells x${r.generated}`;
  if (kind === 'linear') return `${r.model} ${r.name} ${r.in}x${r.out} x${r.rows}`;
  // A batch of one (and a row from before --batch) keeps the key it always had.
  const batch = typeof r.batch === 'number' && r.batch !== 1 ? ` x${r.batch}` : '';
  return `${kind === 'latency' ? `${r.model} ` : ''}L${r.length} ${r.policy}@${r.budget || 'all'}${batch}`;
};

/**
 * What must match for two runs' rows to be comparable. Paths, output folders and how a run
 * was spread (which gives the same records) are left out; the model is its folder's name.
 * Eval scores depend on the backend; timings on the very device.
 */
export function comparedConfig(run: RunFile): Row | null {
  const m = run.meta;
  if (!m) return null;
  if (run.kind === 'attention') return m.shape ? { shape: m.shape, device: m.device } : null;
  if (run.kind === 'linear') return { model: m.model, group: m.group, device: m.device };
  const cfg = m.config as Row | undefined;
  if (!cfg) return null;
  const { outputPath: _o, workers, devices, device: _d, model, ...rest } = cfg;
  const common = { ...rest, model: path.basename(String(model)) };
  // An eval from before --cells ran each cell alone, shared cells time a batch's steps; a
  // bench-latency from before --batch decoded one sequence.
  return run.kind === 'eval' ? { ...common, cells: rest.cells ?? 'single', backend: m.backend } : { ...common, batch: rest.batch ?? [1], workers, devices, device: m.device };
}

function differingKeys(a: Row, b: Row): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

const signed = (d: number, digits: number) => `${d >= 0 ? '+' : ''}${d.toFixed(digits)}`;

function compareMetric(field: string, kind: MetricKind, perplexity: boolean, bv: number | null, cv: number | null, lim: CheckLimits): Omit<Move, 'row'> {
  const metric = perplexity ? 'perplexity' : field;
  if (bv === null || cv === null) return { metric, baseline: bv, current: cv, change: bv === cv ? 'none' : 'appeared or vanished', status: bv === cv ? 'ok' : 'CHANGED' };
  if (kind === 'accuracy' && !perplexity) {
    const d = cv - bv;
    return { metric, baseline: bv, current: cv, change: `${signed(d, 1)} pts`, status: d < -lim.maxAccuracyDrop ? 'REGRESSION' : d > lim.maxAccuracyRise ? 'RISE' : 'ok' };
  }
  if (kind === 'read') {
    const rel = bv === 0 ? (cv === 0 ? 0 : Infinity) : (cv - bv) / Math.abs(bv);
    return { metric, baseline: bv, current: cv, change: `${signed(100 * rel, 1)}%`, status: Math.abs(rel) > lim.maxReadChange ? 'CHANGED' : 'ok' };
  }
  const ratio = cv / bv;
  const status = ratio > lim.maxLatencyRatio ? 'REGRESSION' : perplexity && ratio < 1 / lim.maxLatencyRatio ? 'FALL' : 'ok';
  return { metric, baseline: bv, current: cv, change: `x${ratio.toFixed(3)}`, status };
}

/** Every metric of every row of both runs; rows in one run only are NEW or MISSING. */
export function compareRows(baseline: Row[], current: Row[], kind: ResultKind, lim: CheckLimits): Move[] {
  const base = new Map(baseline.map((r) => [keyOf(r, kind), r]));
  const cur = new Map(current.map((r) => [keyOf(r, kind), r]));
  const moves: Move[] = [];
  for (const [key, b] of base) {
    const c = cur.get(key);
    if (!c) {
      moves.push({ row: key, metric: 'row', baseline: null, current: null, change: 'only in the baseline', status: 'MISSING' });
      continue;
    }
    const perplexity = String(b.metric ?? '').startsWith('perplexity');
    for (const m of METRICS[kind]) moves.push({ row: key, ...compareMetric(m.field, m.kind, perplexity, finiteOrNull(b[m.field]), finiteOrNull(c[m.field]), lim) });
  }
  for (const key of cur.keys()) if (!base.has(key)) moves.push({ row: key, metric: 'row', baseline: null, current: null, change: 'only in the current run', status: 'NEW' });
  return moves;
}

export function runCheck(baselineFile: string, currentFile: string, lim: CheckLimits): CheckResult {
  const base = readRun(baselineFile, '--baseline');
  const cur = readRun(currentFile, '--current');
  if (base.kind !== cur.kind) throw new QuestError(`--current holds ${cur.kind} rows but --baseline holds ${base.kind} rows`);
  const notes: string[] = [];
  for (const [run, flag] of [[base, '--baseline'], [cur, '--current']] as const) {
    const warning = provenanceWarning(run.meta as Partial<GitState> | null, `${flag} ${run.file}`);
    if (warning) notes.push(`warning: ${warning}`);
  }
  const [bc, cc] = [comparedConfig(base), comparedConfig(cur)];
  let moves = compareRows(base.rows, cur.rows, base.kind, lim);
  if (!bc || !cc) notes.push(`${bc ? '--current' : '--baseline'} ${bc ? cur.file : base.file}: no recorded configuration; configurations not compared`);
  else {
    const keys = differingKeys(bc, cc);
    if (keys.length && !lim.allowConfigChange)
      throw new QuestError(`--current ${cur.file} ran another configuration than --baseline ${base.file} (${keys.join(', ')} differ); rerun it as the baseline ran, or pass --allow-config-change`);
    if (keys.length) {
      // The rows one configuration has and the other lacks are the change itself, not a failure.
      const only = moves.filter((m) => m.status === 'NEW' || m.status === 'MISSING');
      moves = moves.filter((m) => !only.includes(m));
      notes.push(`configurations differ (${keys.join(', ')}); comparing the rows both have, ${only.filter((m) => m.status === 'MISSING').length} only in the baseline and ${only.filter((m) => m.status === 'NEW').length} only in the current run left out`);
    }
  }
  return { moves, notes, failed: moves.filter((m) => m.status !== 'ok').length };
}
