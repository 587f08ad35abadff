/** The eval runner: samples x policies x budgets -> one record each, appended as it finishes. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkOutputPath, projectRoot, type EvalConfig } from '../config/index.js';
import { QuestError, errorMessage } from '../errors.js';
import { cacheDoesNotFit, checkDevices, chooseBackend, loadModel, type NativeModel, type NativeSequence } from '../engine/index.js';
import { openModelFolder, type ModelFolder } from '../model/index.js';
import { readJson } from '../model/config.js';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer.js';
import { runMetadata, type RunMetadata } from '../report/metadata.js';
import { writePasskeyHeatmaps } from '../report/heatmap.js';
import { evalColumns, makeOutputDir, meanOrNull, quantile, summarize, writeTables, type SummaryRow } from '../report/tables.js';
import { expandTasks, skippedTasks, task, type Sample } from '../tasks/index.js';
import type { Task } from '../tasks/types.js';
import { PPL_BUCKETS } from '../tasks/perplexity.js';
import { taskSeed } from '../tasks/rng.js';
import { generate } from './sampling.js';
import { lockOutput } from './lock.js';
import { appendRecord, readRecords, type EvalRecord, type ReadStats } from './records.js';
import { policyPoints, units, type Unit } from './units.js';
import { checkBudget, checkPolicies, sequenceOptions } from './policies.js';
import { budgetFraction, resolveBudget } from './budgets.js';
import { runPool } from './pool.js';

export interface EvalProgress {
  /** The run's units, those already in `outputDir` (a resumed run) and where records go. */
  start(total: number, done: number, outputDir: string): void;
  unit(record: EvalRecord): void;
  /** Something the user should know that is not a record (a worker that died, a retry). */
  note(message: string): void;
  stop(): void;
}

export interface EvalResult {
  outputDir: string;
  rows: SummaryRow[];
  metadata: RunMetadata;
}

interface Prepared {
  unit: Unit;
  context: Int32Array;
  question: Int32Array;
}

function defaultOutput(folder: ModelFolder): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(projectRoot, 'runs', `${folder.name}-${stamp}`);
}

/** Tokens a task generates at most: --max-new-tokens for the long-generation tasks, else the task's own. */
export const newTokens = (t: Task, cfg: EvalConfig): number => (t.longGeneration ? (cfg.maxNewTokens ?? t.maxNewTokens) : t.maxNewTokens);

/** A sample's tokens, refused up front when prompt and generation would not fit the model. */
function tokenize(tok: TextTokenizer, s: Sample, folder: ModelFolder, maxNewTokens: number, hint: string): { context: Int32Array; question: Int32Array } {
  // A chat template writes its own BOS into the text.
  const context = Int32Array.from(s.ids?.context ?? tok.encode(s.context, !s.chat));
  const question = Int32Array.from(s.ids?.question ?? tok.encode(s.question));
  const total = context.length + question.length;
  if (total + maxNewTokens > folder.spec.maxPositions)
    throw new QuestError(
      `${s.id}: the prompt is ${total} tokens${maxNewTokens ? ` and ${maxNewTokens} may be generated,` : ''} but ${path.join(folder.dir, 'config.json')} allows ${folder.spec.maxPositions} positions (lower ${hint})`,
    );
  return { context, question };
}

function readStats(seq: NativeSequence): ReadStats {
  const st = seq.stats();
  return {
    tokensPerStep: st.policySamples > 0 ? st.tokensRead / st.policySamples : null,
    kvBytesPerStep: st.decodeSteps > 0 ? st.kvBytesRead / st.decodeSteps : null,
    metaBytesPerStep: st.decodeSteps > 0 ? st.metaBytesRead / st.decodeSteps : null,
    selectMs: st.selectMs,
    prefillMs: st.prefillMs,
    decodeMsPerStep: st.decodeSteps > 0 ? st.decodeMs / st.decodeSteps : null,
  };
}

/** --diagnostics: the record's field from the sequence's samples (records.ts EvalRecord.diagnostics). */
function readDiagnostics(seq: NativeSequence, cfg: EvalConfig): Pick<EvalRecord, 'diagnostics'> {
  if (!cfg.diagnostics) return {};
  const d = seq.diagnostics();
  const l2 = Array.from(d.l2);
  const recall = Array.from(d.recall);
  return { diagnostics: { samples: l2.length, l2Mean: meanOrNull(l2), l2P90: quantile(l2, 0.9), recallMean: meanOrNull(recall), recallP10: quantile(recall, 0.1) } };
}

/** The unit's budget in tokens for its sample's prompt; null for dense. */
const budgetTokens = (p: Prepared): number | null =>
  p.unit.point.budget === null ? null : resolveBudget(p.unit.point.budget, p.context.length + p.question.length);

/** The fields every record has: what was run, on what, and how. */
function baseRecord(p: Prepared, cfg: EvalConfig) {
  const { sample, point } = p.unit;
  const t = task(sample.task);
  return {
    key: p.unit.key,
    task: sample.task,
    benchmark: t.benchmark,
    category: typeof sample.meta.category === 'string' ? sample.meta.category : null,
    groups: sample.groups ?? [],
    sampleId: sample.id,
    length: typeof sample.meta.length === 'number' ? sample.meta.length : null,
    depth: typeof sample.meta.depth === 'number' ? sample.meta.depth : null,
    contextTokens: p.context.length,
    questionTokens: p.question.length,
    policy: point.policy,
    budget: point.budget,
    budgetTokens: budgetTokens(p),
    questionMode: cfg.questionMode,
    metric: t.metric,
  };
}

/** What a cell of this sample prefills, and the question tokens it then feeds one decode step at a time. */
function split(p: Prepared, t: Task, cfg: EvalConfig): { prefix: Int32Array; fed: Int32Array } {
  // A perplexity window prefills its dense prefix and feeds every other token.
  if (t.maxNewTokens === 0) return { prefix: p.context, fed: p.question };
  // decode: the question (or its last --question-tokens) is fed token by token under the
  // policy, as Quest's evaluation does; whatever is not fed is prefilled with the context.
  const n = cfg.questionMode === 'decode' ? Math.min(p.question.length, cfg.questionTokens ?? p.question.length) : 0;
  const prefix = new Int32Array(p.context.length + p.question.length - n);
  prefix.set(p.context);
  prefix.set(p.question.subarray(0, p.question.length - n), p.context.length);
  return { prefix, fed: p.question.subarray(p.question.length - n) };
}

/** A cell's record from its generated tokens (and, for a long generation, how it stopped). */
function answerRecord(
  p: Prepared,
  t: Task,
  cfg: EvalConfig,
  fed: number,
  out: { ids: ArrayLike<number>; text: string; stoppedBy?: EvalRecord['stoppedBy'] },
  seq: NativeSequence,
): EvalRecord {
  return {
    ...baseRecord(p, cfg),
    questionTokensFed: fed,
    generatedTokens: out.ids.length,
    ...(out.stoppedBy !== undefined ? { stoppedBy: out.stoppedBy } : {}),
    prediction: out.text,
    answers: p.unit.sample.answers,
    score: t.score(out.text, p.unit.sample),
    stats: readStats(seq),
    ...readDiagnostics(seq, cfg),
  };
}

/** A perplexity window's record: every fed token's NLL, summed per position bucket. */
function perplexityRecord(p: Prepared, cfg: EvalConfig, nll: Float64Array, seq: NativeSequence): EvalRecord {
  const span = Math.ceil(nll.length / PPL_BUCKETS);
  const buckets = Array.from({ length: PPL_BUCKETS }, (_, b) => {
    const part = nll.subarray(b * span, Math.min(nll.length, (b + 1) * span));
    const from = p.context.length + b * span;
    return { from, to: from + part.length, sum: part.reduce((a, x) => a + x, 0), tokens: part.length };
  }).filter((b) => b.tokens > 0);
  return {
    ...baseRecord(p, cfg),
    questionTokensFed: p.question.length,
    prediction: '',
    answers: [],
    score: Math.exp(buckets.reduce((a, b) => a + b.sum, 0) / nll.length),
    nll: buckets,
    stats: readStats(seq),
    ...readDiagnostics(seq, cfg),
  };
}

/** The cell's policy point with its budget resolved for the sample (a fraction of the prompt becomes tokens). */
const cellOptions = (cfg: EvalConfig, p: Prepared) => ({
  ...sequenceOptions(cfg, { policy: p.unit.point.policy, budget: budgetTokens(p) }),
  ...(cfg.diagnostics ? { diagnostics: true } : {}),
});

/** One cell alone: its own prefill, feed and generation (--cells single, and long generations). */
async function runCell(model: NativeModel, p: Prepared, cfg: EvalConfig, tok: TextTokenizer, stop: Int32Array): Promise<EvalRecord> {
  const t = task(p.unit.sample.task);
  const { prefix, fed } = split(p, t, cfg);
  const seq = model.createSequence(cellOptions(cfg, p));
  try {
    const prefillLogits = await seq.prefill(prefix);
    if (t.maxNewTokens === 0) return perplexityRecord(p, cfg, await seq.nll(fed), seq);
    const logits = fed.length > 0 ? await seq.feed(fed) : prefillLogits;
    if (t.longGeneration) {
      const gen = await generate(seq, logits, tok, {
        maxNewTokens: newTokens(t, cfg),
        stopTokens: stop,
        stopStrings: cfg.stop,
        sampling: { temperature: cfg.temperature, topP: cfg.topP, topK: cfg.topK },
        // One stream per sample, the same under every policy and budget.
        seed: taskSeed(cfg.seed, p.unit.sample.id),
      });
      return answerRecord(p, t, cfg, fed.length, gen, seq);
    }
    const ids = await seq.generate(t.maxNewTokens, stop);
    return answerRecord(p, t, cfg, fed.length, { ids, text: tok.decode(ids) }, seq);
  } finally {
    seq.close();
  }
}

/**
 * The cells of one sample from one shared prefill, decoded as one batch (--cells shared): the
 * records of runCell, in order. Long generations sample on the host token by token and run
 * their cells alone.
 */
async function runCells(model: NativeModel, ps: Prepared[], cfg: EvalConfig, tok: TextTokenizer, stop: Int32Array): Promise<EvalRecord[]> {
  const t = task(ps[0].unit.sample.task);
  if (t.longGeneration) {
    const out: EvalRecord[] = [];
    for (const p of ps) out.push(await runCell(model, p, cfg, tok, stop));
    return out;
  }
  const { prefix, fed } = split(ps[0], t, cfg);
  const seqs = await model.prefillShared(
    prefix,
    ps.map((p) => cellOptions(cfg, p)),
  );
  try {
    if (t.maxNewTokens === 0) {
      const nll = await model.nllBatch(seqs, fed);
      return ps.map((p, i) => perplexityRecord(p, cfg, nll[i], seqs[i]));
    }
    if (fed.length > 0) await model.feedBatch(seqs, fed);
    const ids = await model.generateBatch(seqs, t.maxNewTokens, stop);
    return ps.map((p, i) => answerRecord(p, t, cfg, fed.length, { ids: ids[i], text: tok.decode(ids[i]) }, seqs[i]));
  } finally {
    for (const s of seqs) s.close();
  }
}

/**
 * runCells, in as many groups as the device holds: a shared prefill whose cells' pages do not
 * fit together (the engine says how many tokens would) is split in halves, each its own
 * prefill, with a line saying so. Each cell's record is the same either way, and each group's
 * records are handed on as it finishes: a later group's failure loses none of them (a pool
 * worker returns its job's records together, at the job's end). `fits` is PreparedRun's.
 */
async function runCellsFitting(
  model: NativeModel,
  ps: Prepared[],
  cfg: EvalConfig,
  tok: TextTokenizer,
  stop: Int32Array,
  io: { note: (m: string) => void; onRecord: (r: EvalRecord) => void; fits: Map<number, number> },
): Promise<void> {
  const length = ps[0].context.length;
  let records: EvalRecord[];
  try {
    records = await runCells(model, ps, cfg, tok, stop);
  } catch (err) {
    // Long generations run their cells one at a time already (runCells).
    if (ps.length === 1 || task(ps[0].unit.sample.task).longGeneration || !cacheDoesNotFit(err)) throw err;
    const half = Math.ceil(ps.length / 2);
    io.note(
      `--cells shared: the ${ps.length} cells of sample ${ps[0].unit.sample.id} do not fit on the device together (${errorMessage(err)}): ` +
        `they run as two prefills of ${half} and ${ps.length - half}`,
    );
    if (!io.fits.has(length)) io.fits.set(length, 0);
    await runCellsFitting(model, ps.slice(0, half), cfg, tok, stop, io);
    return runCellsFitting(model, ps.slice(half), cfg, tok, stop, io);
  }
  if (io.fits.has(length)) io.fits.set(length, Math.max(io.fits.get(length)!, ps.length));
  for (const r of records) io.onRecord(r);
}

/** A run's identity: rerunning into the same folder resumes, and shards merge, only when these match. */
export function identity(cfg: EvalConfig): Record<string, unknown> {
  const { outputPath: _o, limit: _l, device: _d, shard: _s, workers: _w, devices: _v, cells: _c, diagnostics, ...rest } = cfg;
  // Named only when on, so that runs from before the flag still resume.
  return diagnostics ? { ...rest, diagnostics } : rest;
}

export type Tokens = { context: Int32Array; question: Int32Array };

/** Units of one sample and its tokens: what a pool worker is sent (one unit, or a shared group). */
export interface EvalJob {
  units: Unit[];
  tokens: Tokens;
}

/** Everything a run needs before its first unit: the model folder, tokenizer and the units. */
export interface PreparedRun {
  cfg: EvalConfig;
  folder: ModelFolder;
  tok: TextTokenizer;
  units: Unit[];
  tokens: Map<string, Tokens>;
  /** Loaded by the first unit run, then kept. */
  model: NativeModel | null;
  /**
   * Per context length that a shared prefill was refused at, the most cells that then ran
   * together: later samples start in groups that size (kept for a pool worker's later jobs too).
   */
  fits: Map<number, number>;
}

/** The model folder and tokenizer of a run, no units yet (what a pool worker needs). */
export function openRun(cfg: EvalConfig): PreparedRun {
  checkPolicies(cfg);
  const folder = openModelFolder(cfg.model);
  return { cfg, folder, tok: loadTokenizer(folder.dir), units: [], tokens: new Map(), model: null, fits: new Map() };
}

/**
 * Tokens a task generates beyond --lengths: passkey's prompt alone is that long
 * (passkey.ts garbageFor), and so is LongBench's, cut to it as pred.py cuts to max_length,
 * unless --longbench-fit leaves room for the generation, and InfiniteBench's, cut to it as
 * truncate_by_tokens cuts to TRUNCATE_LEN; RULER fits prompt and generation in
 * it (ruler/common.ts drawFitting); perplexity generates none.
 */
const beyondLength = (t: Task, cfg: EvalConfig) =>
  t.benchmark === 'passkey' || t.benchmark === 'infinitebench' || (t.benchmark.startsWith('longbench') && !cfg.longbenchFit) ? t.maxNewTokens : 0;

/** Every length, with what each task generates after it, must fit the model: checked before any sample is made. */
function checkLengths(cfg: EvalConfig, tasks: Task[], folder: ModelFolder): void {
  const max = folder.spec.maxPositions;
  const where = path.join(folder.dir, 'config.json');
  for (const t of tasks)
    if (t.longGeneration && newTokens(t, cfg) >= max)
      throw new QuestError(`--max-new-tokens ${newTokens(t, cfg)}: ${t.name}'s prompt and generation must fit the ${max} positions ${where} allows`);
  for (const t of tasks.filter((x) => !x.longGeneration))
    for (const L of cfg.lengths) {
      const extra = beyondLength(t, cfg);
      if (L > max) throw new QuestError(`--lengths ${L}: ${where} allows ${max} positions`);
      if (L + extra <= max) continue;
      throw new QuestError(`--lengths ${L}: ${t.name} generates ${extra} tokens after a prompt of that length, ${L + extra} positions, but ${where} allows ${max} (at most ${max - extra} for ${t.name})`);
    }
}

/** What --limit cut from a task's samples, naming the lengths left out wholly or in part. */
function limitNote(t: Task, all: Sample[], kept: Sample[], limit: number): string {
  const n = (ss: Sample[], L: unknown) => ss.filter((s) => s.meta.length === L).length;
  const lengths = [...new Set(all.map((s) => s.meta.length))].filter((L) => typeof L === 'number');
  const none = lengths.filter((L) => n(kept, L) === 0);
  const part = lengths.filter((L) => n(kept, L) > 0 && n(kept, L) < n(all, L));
  const cut = [none.length ? `none at length ${none.join(', ')}` : '', part.length ? `some at length ${part.join(', ')}` : ''].filter(Boolean);
  return `--limit ${limit}: ${t.name} runs ${kept.length} of its ${all.length} samples${cut.length ? `, ${cut.join('; ')}` : ''}`;
}

/** The run's tasks, each checked to fit the model at every length. */
function runTasks(run: PreparedRun): Task[] {
  const tasks = expandTasks(run.cfg.tasks, run.cfg).map((name) => task(name));
  checkLengths(run.cfg, tasks, run.folder);
  return tasks;
}

/** The run's samples and units; `note` says what --limit left out. */
function prepareUnits(run: PreparedRun, tasks: Task[], note: (message: string) => void): PreparedRun {
  const { cfg, folder, tok } = run;
  const tokens = run.tokens;
  const samples: Sample[] = [];
  for (const t of tasks) {
    const all = t.samples({
      tokenizer: tok,
      lengths: cfg.lengths,
      depths: cfg.depths,
      seed: taskSeed(cfg.seed, t.name),
      perLength: Math.min(cfg.samples, cfg.limit ?? cfg.samples),
      haystackFile: cfg.haystackFile ?? undefined,
      qaFiles: cfg.qaFiles,
      longbenchDir: cfg.longbenchDir ?? undefined,
      longbenchE: cfg.longbenchE,
      longbenchV2File: cfg.longbenchV2File ?? undefined,
      longbenchFit: cfg.longbenchFit,
      codeSim: cfg.codeSim,
      textFile: cfg.textFile ?? undefined,
      pplPrefix: cfg.pplPrefix,
      infinitebenchDir: cfg.infinitebenchDir ?? undefined,
      mathFile: cfg.mathFile ?? undefined,
      aimeFile: cfg.aimeFile ?? undefined,
      dataFile: cfg.dataFile ?? undefined,
      dataFields: cfg.dataFields,
      numSamples: cfg.numSamples,
    });
    const kept = cfg.limit === null ? all : all.slice(0, cfg.limit);
    if (kept.length < all.length) note(limitNote(t, all, kept, cfg.limit!));
    for (const s of kept) {
      const ids = tokenize(tok, s, folder, newTokens(t, cfg), t.longGeneration ? '--max-new-tokens' : '--lengths');
      const prompt = ids.context.length + ids.question.length;
      for (const b of cfg.budgets)
        if (budgetFraction(b) !== null) checkBudget(cfg, resolveBudget(b, prompt), `--budgets ${b}: ${s.id}'s prompt of ${prompt} tokens gives ${resolveBudget(b, prompt)}, which`);
      tokens.set(s.id, ids);
      samples.push(s);
    }
  }
  const all = units(samples, policyPoints(cfg.policies, cfg.budgets));
  // --shard i/n: every n-th unit from the i-th, so each shard gets a like mix of lengths.
  const mine = cfg.shard ? all.filter((_, k) => k % cfg.shard!.count === cfg.shard!.index - 1) : all;
  return { ...run, units: mine };
}

/**
 * The jobs of a run: with --cells shared, each sample's pending units together (they share
 * one prefill); else each unit alone. Units come sample by sample (units.ts).
 */
export function cellGroups(todo: Unit[], cfg: EvalConfig): Unit[][] {
  if (cfg.cells === 'single') return todo.map((u) => [u]);
  const groups: Unit[][] = [];
  for (const u of todo) {
    const last = groups.at(-1);
    if (last && last[0].sample.id === u.sample.id) last.push(u);
    else groups.push([u]);
  }
  return groups;
}

/**
 * Runs units in this process, handing each record over as it finishes (a shared group's records
 * together, as each of its prefills ends). A sample's cells start in groups no larger than
 * what ran together at its length after a refusal.
 */
export async function runUnits(run: PreparedRun, todo: Unit[], onRecord: (r: EvalRecord) => void, note: (m: string) => void = () => {}): Promise<void> {
  if (!todo.length) return;
  run.model ??= await loadModel(run.folder.spec, run.folder.dir, chooseBackend(run.cfg.device, run.cfg).use);
  const model = run.model;
  const stop = Int32Array.from(run.folder.stopTokens);
  const prepared = (unit: Unit): Prepared => ({ unit, ...run.tokens.get(unit.sample.id)! });
  const io = { note, onRecord, fits: run.fits };
  for (const group of cellGroups(todo, run.cfg)) {
    if (run.cfg.cells !== 'shared') {
      for (const unit of group) onRecord(await runCell(model, prepared(unit), run.cfg, run.tok, stop));
      continue;
    }
    const ps = group.map(prepared);
    const most = io.fits.get(ps[0].context.length) || ps.length;
    for (let i = 0; i < ps.length; i += most) await runCellsFitting(model, ps.slice(i, i + most), run.cfg, run.tok, stop, io);
  }
}

/** Opens (or checks) an output folder for a run of this identity; the records already there. */
export function openOutput(dir: string, id: Record<string, unknown>): EvalRecord[] {
  makeOutputDir(checkOutputPath(dir));
  const runFile = path.join(dir, 'run.json');
  if (existsSync(runFile)) {
    const prev = readJson(runFile, "the run's identity (run.json)");
    if (JSON.stringify(prev) !== JSON.stringify(id))
      throw new QuestError(`--output-path ${dir}: holds a run with a different configuration (see ${runFile}); choose another folder`);
  } else {
    writeFileSync(runFile, JSON.stringify(id, null, 2) + '\n');
  }
  return readRecords(path.join(dir, 'samples.jsonl'));
}

/** The tables (and passkey heatmaps) of a set of records; `meta.config` gives the row order and what the task groups left out. */
export function writeResults(dir: string, records: EvalRecord[], meta: { config: object } & Record<string, unknown>): SummaryRow[] {
  const cfg = meta.config as Pick<EvalConfig, 'policies' | 'budgets' | 'tasks' | 'qaFiles' | 'longbenchDir' | 'longbenchE' | 'infinitebenchDir'>;
  const rows = summarize(records, cfg);
  writePasskeyHeatmaps(dir, records);
  // The csv keeps to the flat columns; results.json carries each row's `of` as well.
  writeTables(dir, 'eval', rows, evalColumns(rows), { ...meta, skippedTasks: skippedTasks(cfg.tasks, cfg) }, ({ of: _of, ...flat }) => flat);
  return rows;
}

export async function runEval(cfg: EvalConfig, argv: string[], progress: EvalProgress): Promise<EvalResult> {
  const backend = chooseBackend(cfg.device, cfg);
  checkDevices(cfg.devices, backend);
  const opened = openRun(cfg);
  const tasks = runTasks(opened);
  const outputDir = path.resolve(cfg.outputPath ?? defaultOutput(opened.folder));
  makeOutputDir(checkOutputPath(outputDir));
  const unlock = lockOutput(outputDir, progress.note);
  try {
    const run = prepareUnits(opened, tasks, progress.note);
    const wanted = new Set(run.units.map((u) => u.key));
    const done = openOutput(outputDir, identity(cfg)).filter((r) => wanted.has(r.key));
    const doneKeys = new Set(done.map((r) => r.key));
    const pending = run.units.filter((u) => !doneKeys.has(u.key));
    const recordsFile = path.join(outputDir, 'samples.jsonl');
    const metadata = await runMetadata(backend, argv, outputDir);
    const records = [...done];
    const keep = (rec: EvalRecord) => {
      appendRecord(recordsFile, rec);
      records.push(rec);
      progress.unit(rec);
    };
    progress.start(run.units.length, done.length, outputDir);
    try {
      if (cfg.workers > 1 || cfg.devices.length > 0)
        await runPool<EvalConfig, EvalJob, EvalRecord[]>(
          {
            worker: 'worker.js',
            // Workers open the same model from the same config, without sharding or pooling of their own.
            init: { ...cfg, workers: 1, devices: [], shard: null },
            workers: cfg.workers,
            devices: cfg.devices,
            key: (job) => job.units.map((u) => u.key).join(','),
            onResult: (recs) => recs.forEach(keep),
            note: progress.note,
          },
          cellGroups(pending, cfg).map((units) => ({ units, tokens: run.tokens.get(units[0].sample.id)! })),
        );
      else await runUnits(run, pending, keep, progress.note);
    } finally {
      progress.stop();
    }
    const rows = writeResults(outputDir, records, { ...metadata, model: run.folder.dir, tokenizer: run.tok.file, shard: cfg.shard, config: cfg });
    return { outputDir, rows, metadata };
  } finally {
    unlock();
  }
}
