/** The merge runner: the outputs of shards (or of any runs of one configuration) combined into one result set. */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import { readJson } from '../model/config.js';
import { makeOutputDir, namedKind, type SummaryRow } from '../report/tables.js';
import { checkOutputPath } from '../config/index.js';
import { openOutput, writeResults } from './eval.js';
import { lockOutput } from './lock.js';
import { readRecords, type EvalRecord } from './records.js';

type Shard = { index: number; count: number } | null;

/** An eval's results.json, refused when it names another kind (files from before kinds were named are evals' here: run.json says so). */
function readEvalResults(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'results.json');
  const res = readJson(file, 'results.json');
  const kind = namedKind(res.kind, file);
  if (kind && kind !== 'eval') throw new QuestError(`${dir}: its results.json holds ${kind} results, not an eval's`);
  return res;
}

/**
 * What the folders lack of a whole run, or null when they hold one: each finished run's
 * results.json names its --shard; an unsharded run is whole by itself.
 */
function incomplete(dirs: string[]): string | null {
  const shards: Shard[] = [];
  const unfinished: string[] = [];
  for (const dir of dirs) {
    if (!existsSync(path.join(dir, 'results.json'))) unfinished.push(dir);
    else {
      const shard = (readEvalResults(dir).shard as Shard | undefined) ?? null;
      const ok = shard === null || (Number.isInteger(shard.index) && Number.isInteger(shard.count) && shard.index >= 1 && shard.index <= shard.count);
      if (!ok) throw new QuestError(`${path.join(dir, 'results.json')}: "shard" must be {index, count} with 1 <= index <= count, as --shard i/n writes it`);
      shards.push(shard);
    }
  }
  if (shards.includes(null)) return null;
  const counts = [...new Set(shards.map((s) => s!.count))];
  for (const n of counts) if (new Set(shards.filter((s) => s!.count === n).map((s) => s!.index)).size === n) return null;
  const parts: string[] = [];
  if (counts.length === 1) {
    const n = counts[0];
    const have = new Set(shards.map((s) => s!.index));
    const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !have.has(i));
    parts.push(`${have.size} of ${n} shards (missing ${missing.map((i) => `${i}/${n}`).join(', ')})`);
  } else if (counts.length > 1) {
    parts.push(`shards of different splits (${shards.map((s) => `${s!.index}/${s!.count}`).join(', ')})`);
  }
  if (unfinished.length) parts.push(`unfinished runs without results.json (${unfinished.join(', ')})`);
  return parts.join('; ');
}

export interface MergeResult {
  outputDir: string;
  records: number;
  rows: SummaryRow[];
}

/**
 * Merges the records of `dirs` into `outputPath` and writes their tables; refuses runs of
 * different configurations, and an incomplete shard set unless `allowPartial` (then `note` says what is missing).
 */
export function runMerge(dirs: string[], outputPath: string, allowPartial: boolean, note: (message: string) => void): MergeResult {
  let identity: Record<string, unknown> | null = null;
  let first = '';
  const byKey = new Map<string, EvalRecord>();
  for (const dir of dirs) {
    const runFile = path.join(dir, 'run.json');
    if (!existsSync(runFile)) throw new QuestError(`${dir}: not a quest eval output (no run.json)`);
    const id = readJson(runFile, 'run.json');
    if (identity === null) {
      identity = id;
      first = dir;
    } else if (JSON.stringify(id) !== JSON.stringify(identity)) {
      const keys = [...new Set([...Object.keys(id), ...Object.keys(identity)])].filter((k) => JSON.stringify(id[k]) !== JSON.stringify(identity![k]));
      throw new QuestError(`refusing to merge: ${dir} and ${first} ran different configurations (${keys.join(', ')})`);
    }
    for (const r of readRecords(path.join(dir, 'samples.jsonl'))) if (!byKey.has(r.key)) byKey.set(r.key, r);
  }
  const partial = incomplete(dirs);
  if (partial !== null && !allowPartial) throw new QuestError(`refusing to merge an incomplete run: ${partial}; pass --allow-partial to merge it anyway`);
  if (partial !== null) note(`merging an incomplete run: ${partial}`);
  const out = path.resolve(outputPath);
  // Locked before anything is read or written there, as eval does.
  makeOutputDir(checkOutputPath(out));
  const unlock = lockOutput(out, note);
  try {
    const existing = openOutput(out, identity!);
    if (existing.length) throw new QuestError(`--output-path ${out}: already holds records; merge into an empty folder`);
    const records = [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    writeFileSync(path.join(out, 'samples.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
    const rows = writeResults(out, records, { merged: dirs.map((d) => path.resolve(d)), partial, date: new Date().toISOString(), config: identity! });
    return { outputDir: out, records: records.length, rows };
  } finally {
    unlock();
  }
}
