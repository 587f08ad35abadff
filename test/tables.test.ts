// Tables and plots that say what they hold: numeric bucket order, the user's policy and
// budget order, averages labelled by what they average, skipped tasks named, incomplete
// shard sets refused, heatmaps that fit their title and are not a single cell.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { heatmapSvg, writePasskeyHeatmaps } from '../src/report/heatmap.js';
import { summarize } from '../src/report/tables.js';
import type { EvalRecord } from '../src/run/records.js';
import { expandTasks, skippedTasks } from '../src/tasks/index.js';
import { quest, repo, stderrNotes, tempDir } from './helpers.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
function temp(): string {
  const d = tempDir();
  made.push(d);
  return d;
}
afterEach(() => vi.restoreAllMocks());

/** Lines written to stderr while `fn` runs. */
function stderrOf(fn: () => void): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    lines.push(...String(s).split('\n').filter(Boolean));
    return true;
  });
  fn();
  vi.restoreAllMocks();
  return lines;
}

const stats = { tokensPerStep: 10, kvBytesPerStep: 1024, metaBytesPerStep: 0, selectMs: 0, prefillMs: 1, decodeMsPerStep: 1 };
/** A record with what summarize reads; the rest at neutral values. */
function rec(o: Partial<EvalRecord>): EvalRecord {
  const r = { task: 'passkey', benchmark: 'passkey', category: null, groups: [], length: 1024, depth: 50, policy: 'dense', budget: null, metric: 'm', score: 1, ...o };
  return {
    key: `${r.task}-${r.length}-${r.depth}|${r.policy}|${r.budget ?? 'all'}`,
    sampleId: `${r.task}-${r.length}-${r.depth}`,
    contextTokens: 100,
    questionTokens: 10,
    questionMode: 'decode',
    questionTokensFed: 10,
    prediction: '',
    answers: [],
    stats,
    ...r,
  };
}

describe('summary rows', () => {
  it('perplexity position buckets in numeric order', () => {
    const bucket = (from: number) => ({ from, to: from + 240, sum: 240, tokens: 240 });
    const rows = summarize([rec({ task: 'perplexity', benchmark: 'perplexity', metric: 'perplexity', nll: [bucket(64), bucket(304), bucket(544), bucket(784), bucket(1024)] })]);
    expect(rows.map((r) => r.task)).toEqual([
      'perplexity',
      'perplexity [positions 64-303]',
      'perplexity [positions 304-543]',
      'perplexity [positions 544-783]',
      'perplexity [positions 784-1023]',
      'perplexity [positions 1024-1263]',
    ]);
  });

  it('policies and budgets in the order the user named them', () => {
    const policies = ['quest', 'dense', 'h2o'];
    const budgets = [1024, 64];
    const records = [
      rec({ policy: 'dense' }),
      ...['h2o', 'quest'].flatMap((policy) => [64, 1024].map((budget) => rec({ policy, budget }))),
    ];
    const rows = summarize(records, { policies, budgets });
    expect(rows.map((r) => `${r.policy}@${r.budget ?? 'all'}`)).toEqual(['quest@1024', 'quest@64', 'dense@all', 'h2o@1024', 'h2o@64']);
  });

  it('an average of tasks with different metrics says so; one of a single metric keeps it', () => {
    const rows = summarize([
      rec({ task: 'lcc', benchmark: 'longbench', category: 'code', metric: 'code_sim', score: 0.5 }),
      rec({ task: 'repobench-p', benchmark: 'longbench', category: 'code', metric: 'code_sim', score: 0.25 }),
      rec({ task: 'trec', benchmark: 'longbench', category: 'few-shot', metric: 'classification', score: 1 }),
    ]);
    const avg = (task: string) => rows.find((r) => r.task === task)!;
    expect(avg('longbench (avg of 3)').metric).toBe("mean of 3 tasks' metrics");
    expect(avg('longbench (avg of 3)').score).toBeCloseTo((100 * (0.5 + 0.25 + 1)) / 3, 10);
    expect(avg('longbench: code (avg of 2)').metric).toBe('code_sim');
  });

  it('each row says what it sums in fields, its label made from them', () => {
    const rows = summarize([
      rec({ task: 'lcc', benchmark: 'longbench', category: 'code', groups: ['0-4k'] }),
      rec({ task: 'repobench-p', benchmark: 'longbench', category: 'code' }),
    ]);
    expect(rows.map((r) => [r.task, r.of])).toEqual([
      ['lcc', { kind: 'task', task: 'lcc', benchmark: 'longbench', category: 'code' }],
      ['repobench-p', { kind: 'task', task: 'repobench-p', benchmark: 'longbench', category: 'code' }],
      ['lcc [0-4k]', { kind: 'group', task: 'lcc', group: '0-4k' }],
      ['longbench (avg of 2)', { kind: 'average', benchmark: 'longbench', category: null, tasks: 2 }],
      ['longbench: code (avg of 2)', { kind: 'average', benchmark: 'longbench', category: 'code', tasks: 2 }],
    ]);
    // A task whose name looks like a label is still a task: nothing is parsed back from names.
    const odd = summarize([rec({ task: 'x [y]', benchmark: 'b' }), rec({ task: 'z (avg of 9)', benchmark: 'b' })]);
    expect(odd.map((r) => [r.task, r.of.kind])).toEqual([['x [y]', 'task'], ['z (avg of 9)', 'task'], ['b (avg of 2)', 'average']]);
  });
});

describe('task groups that leave tasks out', () => {
  const none = { qaFiles: [], longbenchDir: null, longbenchE: false };

  it('ruler without --qa-file says which tasks are skipped and why', () => {
    const lines = stderrOf(() => expandTasks(['ruler'], none));
    expect(lines).toEqual(["quest: --tasks ruler: qa_1, qa_2 skipped (RULER's QA tasks need --qa-file)"]);
    expect(stderrOf(() => expandTasks(['ruler'], { ...none, qaFiles: ['squad.json'] }))).toEqual([]);
  });

  it('longbench names the datasets whose files are missing', () => {
    const dir = temp();
    for (const n of ['lcc', 'trec']) writeFileSync(path.join(dir, `${n}.jsonl`), '');
    const src = { ...none, longbenchDir: dir };
    expect(stderrOf(() => expandTasks(['longbench'], src))).toEqual([`quest: ${skippedTasks(['longbench'], src)[0]}`]);
    expect(skippedTasks(['longbench'], src)).toEqual([
      `--tasks longbench: 19 of 21 datasets skipped (no <dataset>.jsonl in --longbench-dir ${dir}): narrativeqa, qasper, multifieldqa_en, multifieldqa_zh, hotpotqa, 2wikimqa, musique, dureader, gov_report, qmsum, multi_news, vcsum, triviaqa, samsum, lsht, passage_count, passage_retrieval_en, passage_retrieval_zh, repobench-p`,
    ]);
  });

  it('through the CLI: one line on stderr, recorded in results.json, the average labelled', async () => {
    const dir = temp();
    const lb = path.join(dir, 'lb');
    mkdirSync(lb);
    for (const n of ['lcc', 'trec']) cpSync(path.join(repo, 'datasets', 'longbench-fixtures', `${n}.jsonl`), path.join(lb, `${n}.jsonl`));
    const out = path.join(dir, 'out');
    const r = await quest(['eval', '--device', 'cpu', '--tasks', 'longbench', '--longbench-dir', lb, '--lengths', '512', '--limit', '1', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const line = `--tasks longbench: 19 of 21 datasets skipped (no <dataset>.jsonl in --longbench-dir ${lb}): narrativeqa, qasper, multifieldqa_en, multifieldqa_zh, hotpotqa, 2wikimqa, musique, dureader, gov_report, qmsum, multi_news, vcsum, triviaqa, samsum, lsht, passage_count, passage_retrieval_en, passage_retrieval_zh, repobench-p`;
    expect(stderrNotes(r.stderr)).toBe(`quest: ${line}`);
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(results.skippedTasks).toEqual([line]);
    expect(r.stdout).toMatch(/\| longbench \(avg of 2\) \| 512 \| dense \| all \| decode \| 2 \| [\d.]+ \| mean of 2 tasks' metrics, % \|/);
  });
});

describe('quest merge of shards', () => {
  // Three samples at depths 0, 50, 100: shard 1/2 holds two cells of the heatmap.
  const args = ['eval', '--device', 'cpu', '--lengths', '256', '--samples', '3', '--depths', '0,50,100'];

  it('refuses an incomplete shard set without --allow-partial, and warns with it', async () => {
    const dir = temp();
    const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
    expect((await quest([...args, '--shard', '1/2', '--output-path', a])).exitCode).toBe(0);
    const refused = await quest(['merge', a, '--output-path', path.join(dir, 'm1')]);
    expect(refused.exitCode).toBe(1);
    expect(stderrNotes(refused.stderr)).toBe('quest: refusing to merge an incomplete run: 1 of 2 shards (missing 2/2); pass --allow-partial to merge it anyway');
    expect(existsSync(path.join(dir, 'm1'))).toBe(false);

    const partial = await quest(['merge', a, '--allow-partial', '--output-path', path.join(dir, 'm2')]);
    expect(partial.exitCode).toBe(0);
    expect(stderrNotes(partial.stderr)).toBe('quest: merging an incomplete run: 1 of 2 shards (missing 2/2)');
    expect(JSON.parse(readFileSync(path.join(dir, 'm2', 'results.json'), 'utf8')).partial).toBe('1 of 2 shards (missing 2/2)');

    expect((await quest([...args, '--shard', '2/2', '--output-path', b])).exitCode).toBe(0);
    const whole = await quest(['merge', a, b, '--output-path', path.join(dir, 'm3')]);
    expect(whole.exitCode).toBe(0);
    expect(whole.stderr).toBe('');
  });

  it('writes results.json of kind eval, rows saying what they sum, and refuses a folder whose results are of another kind', async () => {
    const dir = temp();
    const a = path.join(dir, 'a');
    expect((await quest([...args, '--output-path', a])).exitCode).toBe(0);
    const m = path.join(dir, 'm');
    expect((await quest(['merge', a, '--output-path', m])).exitCode).toBe(0);
    const merged = JSON.parse(readFileSync(path.join(m, 'results.json'), 'utf8'));
    expect(merged.kind).toBe('eval');
    expect(merged.rows.map((r: { of: unknown }) => r.of)).toEqual([{ kind: 'task', task: 'passkey', benchmark: 'passkey', category: null }]);
    // The csv keeps its flat columns.
    expect(readFileSync(path.join(m, 'summary.csv'), 'utf8').split('\n')[0]).toBe(
      'task,metric,length,policy,budget,questionMode,n,skipped,score,tokensPerStep,kvKiBPerStep,metaKiBPerStep,selectMsPerSample,prefillMsPerSample,decodeMsPerStep,genTokensMean,genTokensP90',
    );
    const file = path.join(a, 'results.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), kind: 'latency' }));
    const r = await quest(['merge', a, '--output-path', path.join(dir, 'm2')]);
    expect(r.exitCode).toBe(1);
    expect(stderrNotes(r.stderr)).toBe(`quest: ${a}: its results.json holds latency results, not an eval's`);
  });

  it('refuses a shard whose run did not finish (no results.json)', async () => {
    const dir = temp();
    const a = path.join(dir, 'a');
    expect((await quest([...args, '--shard', '1/1', '--output-path', a])).exitCode).toBe(0);
    rmSync(path.join(a, 'results.json'));
    const r = await quest(['merge', a, '--output-path', path.join(dir, 'm')]);
    expect(r.exitCode).toBe(1);
    expect(stderrNotes(r.stderr)).toBe(`quest: refusing to merge an incomplete run: unfinished runs without results.json (${a}); pass --allow-partial to merge it anyway`);
  });
});

describe('passkey heatmaps', () => {
  it('are wide enough for their title', () => {
    const title = 'passkey accuracy (%), oracle-topk at budget 16384';
    const svg = heatmapSvg(title, [rec({ length: 1024, depth: 0 }), rec({ length: 2048, depth: 0 })]);
    const width = Number(/<svg [^>]*width="(\d+)"/.exec(svg)![1]);
    const [x, size] = /<text x="(\d+)" y="22" font-size="(\d+)">/.exec(svg)!.slice(1).map(Number);
    // 0.6 em a character: the mean advance of Helvetica/Arial lowercase text and digits.
    expect(width).toBeGreaterThanOrEqual(x + title.length * size * 0.6);
  });

  it('a single cell is not drawn, and a line says so', () => {
    const dir = temp();
    let files: string[] = [];
    const lines = stderrOf(() => (files = writePasskeyHeatmaps(dir, [rec({ policy: 'dense' }), rec({ policy: 'quest', budget: 64 })])));
    expect(files).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
    expect(lines).toEqual(['quest: no passkey heatmap: the sweep has one length and one depth (a single cell)']);
  });

  it('a sweep of two cells is drawn', () => {
    const dir = temp();
    const files = writePasskeyHeatmaps(dir, [rec({ depth: 0 }), rec({ depth: 100 })]);
    expect(files).toEqual([path.join(dir, 'passkey-dense-all.svg')]);
  });

  it('through the CLI the table keeps --policies and --budgets order', async () => {
    const out = path.join(temp(), 'out');
    const r = await quest(['eval', '--device', 'cpu', '--policies', 'quest,dense', '--budgets', '128,64', '--lengths', '256', '--samples', '1', '--depths', '50', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('| passkey |')).map((l) => l.split(' | ').slice(2, 4).join('@'));
    expect(rows).toEqual(['quest@128', 'quest@64', 'dense@all']);
    expect(stderrNotes(r.stderr)).toBe('quest: no passkey heatmap: the sweep has one length and one depth (a single cell)');
    expect(readdirSync(out).filter((f) => f.endsWith('.svg'))).toEqual([]);
  });
});

describe('generation length columns', () => {
  it("mean and p90 of the tokens generated, p90 interpolated as numpy.percentile's default", async () => {
    const { summarize, quantile } = await import('../src/report/tables.js');
    // numpy.percentile([3, 10, 1, 7, 20], 90) = 16.0: sorted 1 3 7 10 20, position 3.6.
    expect(quantile([3, 10, 1, 7, 20], 0.9)).toBeCloseTo(16, 12);
    expect(quantile([5], 0.9)).toBe(5);
    expect(quantile([], 0.9)).toBeNull();
    const base = { task: 't', benchmark: 't', category: null, groups: [], length: null, depth: null, contextTokens: 1, questionTokens: 0, policy: 'dense', budget: null, questionMode: 'decode' as const, questionTokensFed: 0, prediction: '', answers: [], metric: 'm', score: 1 };
    const stats = { tokensPerStep: null, kvBytesPerStep: null, metaBytesPerStep: null, selectMs: 0, prefillMs: 0, decodeMsPerStep: null };
    const rows = summarize([3, 10, 1, 7, 20].map((g, i) => ({ ...base, key: `t${i}|dense|all`, sampleId: `t${i}`, generatedTokens: g, stats })));
    expect(rows[0].genTokensMean).toBe(8.2);
    expect(rows[0].genTokensP90).toBeCloseTo(16, 12);
  });
});

describe('diagnostics columns', () => {
  it("average the records' diagnostics per row, over the records that have them, and appear only when some do", async () => {
    const { evalColumns, markdown } = await import('../src/report/tables.js');
    const d = (l2Mean: number, recallP10: number | null) => ({ samples: 4, l2Mean, l2P90: 2 * l2Mean, recallMean: 0.9, recallP10 });
    const rows = summarize([rec({ depth: 10, diagnostics: d(0.1, 0.5) }), rec({ depth: 20, diagnostics: d(0.3, null) })]);
    expect(rows[0]).toMatchObject({ l2Mean: 0.2, recallMean: 0.9, recallP10: 0.5 });
    expect(rows[0].l2P90).toBeCloseTo(0.4, 12);
    expect(markdown(rows, evalColumns(rows))).toContain('| 0.2000 | 0.4000 | 0.9000 | 0.5000 |');
    const plain = summarize([rec({})]);
    expect('l2Mean' in plain[0]).toBe(false);
    expect(markdown(plain, evalColumns(plain))).not.toContain('attn');
  });
});
