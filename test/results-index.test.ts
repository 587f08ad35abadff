// results/RESULTS.md and its plots: made from the results.json files, never stale, and saying
// plainly where each table came from (or that it was not recorded).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { logTicks } from '../src/report/plots.js';
import { quest, repo, tempDirs } from './helpers.js';

const tempDir = tempDirs();
const results = path.join(repo, 'results');

/** A results.json under `root`/`dir`. */
function run(root: string, dir: string, body: Record<string, unknown>): void {
  mkdirSync(path.join(root, dir), { recursive: true });
  writeFileSync(path.join(root, dir, 'results.json'), JSON.stringify(body));
}

const evalRow = (policy: string, budget: number | null, score: number) => ({ task: 'passkey', metric: 'first integer = pass key', length: 2048, policy, budget, questionMode: 'decode', n: 5, score });
const attentionRow = (length: number, policy: string, totalUs: number) => ({ length, policy, budget: policy === 'dense' ? 0 : 2048, estimateUs: 0, topkUs: 0, attentionUs: totalUs, totalUs, kvBytes: 1e6, metaBytes: 0, floorUs: 1, achievedGBps: 1, torchUs: null, vsTorch: null, speedupVsDense: 1 });

describe('quest results', () => {
  it('the committed RESULTS.md and plots/ are what it makes from the committed runs', async () => {
    const out = tempDir();
    const r = await quest(['results', '--output-path', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'RESULTS.md'), 'utf8')).toBe(readFileSync(path.join(results, 'RESULTS.md'), 'utf8'));
    const plots = readdirSync(path.join(out, 'plots')).sort();
    expect(readdirSync(path.join(results, 'plots')).sort()).toEqual(plots);
    for (const f of plots) expect(readFileSync(path.join(out, 'plots', f), 'utf8'), f).toBe(readFileSync(path.join(results, 'plots', f), 'utf8'));
  });

  it('names each table\'s device, date, command and commit; a dirty tree and a missing field said plainly', async () => {
    const root = tempDir();
    const sha = 'c'.repeat(40);
    run(root, 'clean', { gitSha: sha, gitDirty: false, date: '2026-12-06T08:13:09.300Z', command: 'quest eval --x', backend: 'cuda', device: 'NVIDIA H100 80GB HBM3', config: { model: '/somewhere/models/quest-tiny' }, rows: [evalRow('dense', null, 100)] });
    run(root, 'dirty/attention', { gitSha: 'a'.repeat(40), gitDirty: true, gitDiffSha256: 'b'.repeat(64), date: '2026-11-26T17:18:32.852Z', command: 'quest bench-attention', device: 'NVIDIA H100 80GB HBM3', shape: { heads: 32, kvHeads: 8, headDim: 128, pageSize: 16 }, rows: [attentionRow(4096, 'dense', 30)] });
    run(root, 'old', { rows: [evalRow('dense', null, 80)] });
    mkdirSync(path.join(root, 'logs-only'));
    writeFileSync(path.join(root, 'logs-only', 'gputest.log'), 'ok\n');
    const out = tempDir();
    const r = await quest(['results', '--from', root, '--output-path', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const md = readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    const entry = (dir: string) => md.slice(md.indexOf(`### ${dir}\n`)).split('\n\n')[1].split('\n');
    expect(entry('clean')).toEqual([
      '- results: [clean/results.json](clean/results.json)',
      '- device: NVIDIA H100 80GB HBM3',
      '- date: 2026-12-06 08:13 UTC',
      '- command: `quest eval --x`',
      `- code: ${sha}, a clean tree`,
      '- model: quest-tiny',
    ]);
    expect(entry('dirty/attention')).toContain('- code: the run comes from a tree with uncommitted changes (aaaaaaa, diff sha256 bbbbbbbbbbbb): it cannot be tied to a commit');
    expect(entry('dirty/attention')).toContain('- shape: 32 query heads × 128, 8 KV heads, page 16');
    expect(entry('old')).toEqual([
      '- results: [old/results.json](old/results.json)',
      '- device: not recorded',
      '- date: not recorded',
      '- command: not recorded',
      '- code: the run records no git state: it cannot be tied to a commit',
      '- model: not recorded',
    ]);
    // The overview: newest first, the undated last.
    expect(md).toContain('| [clean/results.json](clean/results.json) | eval | NVIDIA H100 80GB HBM3 | 2026-12-06 08:13 UTC | ccccccc |');
    expect(md).toContain('| [dirty/attention/results.json](dirty/attention/results.json) | attention | NVIDIA H100 80GB HBM3 | 2026-11-26 17:18 UTC | aaaaaaa + uncommitted changes |');
    expect(md).toContain('| [old/results.json](old/results.json) | eval | not recorded | not recorded | not recorded, tree state not recorded |');
    expect(md.indexOf('[clean/results.json]')).toBeLessThan(md.indexOf('[dirty/attention/results.json]'));
    expect(md.indexOf('[dirty/attention/results.json]')).toBeLessThan(md.indexOf('[old/results.json]'));
    expect(md).toContain('- logs-only/: [logs-only/gputest.log](logs-only/gputest.log)');
    // Columns that no row records are left out; the rows' values as recorded.
    expect(md).toContain('| task | length | policy | budget | question | n | score | metric |\n|---|---|---|---|---|---|---|---|\n| passkey | 2048 | dense | all | decode | 5 | 100.0 | first integer = pass key, % |');
    // One budget and one length: nothing to plot.
    expect(readdirSync(path.join(out, 'plots'))).toEqual([]);
  });

  it('plots accuracy against budget (dense across) and time against context, every point titled with its value', async () => {
    const root = tempDir();
    run(root, 'acc', { rows: [evalRow('dense', null, 100), evalRow('quest', 256, 60), evalRow('quest', 1024, 100), evalRow('h2o', 256, 20), evalRow('h2o', 1024, 40)] });
    run(root, 'att', { shape: { heads: 32, kvHeads: 32, headDim: 128, pageSize: 16 }, rows: [attentionRow(4096, 'dense', 30), attentionRow(4096, 'quest', 15), attentionRow(32768, 'dense', 180), attentionRow(32768, 'quest', 30)] });
    const out = tempDir();
    const r = await quest(['results', '--from', root, '--output-path', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readdirSync(path.join(out, 'plots')).sort()).toEqual(['acc.svg', 'att.svg']);
    const points = (f: string) => [...readFileSync(path.join(out, 'plots', f), 'utf8').matchAll(/<circle [^>]*><title>([^<]*)<\/title>/g)].map((m) => m[1]);
    expect(points('acc.svg')).toEqual(['quest: 256, 60', 'quest: 1024, 100', 'h2o: 256, 20', 'h2o: 1024, 40']);
    expect(readFileSync(path.join(out, 'plots', 'acc.svg'), 'utf8')).toMatch(/<polyline [^>]*stroke-dasharray="6 4"><title>dense \(all\)<\/title>/);
    expect(points('att.svg')).toEqual(['dense: 4K, 30', 'dense: 32K, 180', 'quest 2048: 4K, 15', 'quest 2048: 32K, 30']);
    const md = readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    expect(md).toContain('![acc](plots/acc.svg)');
    expect(md).toContain('![att](plots/att.svg)');
  });

  it('refuses a results.json it cannot read as a quest run, and a missing folder, in one line', async () => {
    const root = tempDir();
    run(root, 'other', { rows: [{ a: 1 }] });
    const r = await quest(['results', '--from', root, '--output-path', tempDir()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: ${path.join(root, 'other', 'results.json')}: not the results.json of a quest eval or bench command`);
    const missing = path.join(root, 'nope');
    const m = await quest(['results', '--from', missing]);
    expect(m.exitCode).toBe(1);
    expect(m.stderr.trim()).toBe(`quest: --from ${missing}: no such folder`);
  });

  it('goes by the kind a results.json names, and refuses a kind it does not know', async () => {
    const root = tempDir();
    // No shape recorded: only its named kind makes it an attention run.
    run(root, 'named', { kind: 'attention', rows: [attentionRow(4096, 'dense', 30)] });
    const out = tempDir();
    const r = await quest(['results', '--from', root, '--output-path', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'RESULTS.md'), 'utf8')).toContain('| [named/results.json](named/results.json) | attention | not recorded |');
    const bad = tempDir();
    run(bad, 'odd', { kind: 'heatmap', rows: [evalRow('dense', null, 100)] });
    const b = await quest(['results', '--from', bad, '--output-path', tempDir()]);
    expect(b.exitCode).toBe(1);
    expect(b.stderr.trim()).toBe(`quest: ${path.join(bad, 'odd', 'results.json')}: kind "heatmap" is not one of eval, latency, attention, sweep, linear`);
  });

  it('log-scale ticks: 1, 2 and 5 times powers of ten around the data', () => {
    expect(logTicks(15, 40)).toEqual([10, 20, 50]);
    expect(logTicks(5.96, 11.18)).toEqual([5, 10, 20]);
    expect(logTicks(20, 100)).toEqual([20, 50, 100]);
    expect(logTicks(0.3, 0.3)).toEqual([0.2, 0.5]);
  });
});
