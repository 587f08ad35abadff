// The CI gate (quest check) on the committed baselines and on currents planted from them,
// and the provenance every results.json records.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { gitState } from '../src/report/metadata.js';
import { quest, repo, setEnv, tempDirs } from './helpers.js';

const tempDir = tempDirs();
const baselines = path.join(repo, 'results', 'baseline');
const evalBaseline = path.join(baselines, 'eval-regression', 'results.json');
type Row = Record<string, any>;
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** A current run: the baseline's results.json as `edit` leaves it, in a folder of its own. */
function planted(edit: (res: { rows: Row[]; config: Row }) => void, from = evalBaseline): string {
  const res = read(from);
  edit(res);
  const dir = tempDir();
  writeFileSync(path.join(dir, 'results.json'), JSON.stringify(res));
  return dir;
}
const row = (rows: Row[], task: string, length: number, policy: string, budget: number | null) =>
  rows.find((r) => r.task === task && r.length === length && r.policy === policy && r.budget === budget)!;
/** The status column of the table's line for a row and metric. */
const status = (stdout: string, key: string, metric: string) => stdout.match(new RegExp(`^\\| ${key.replace(/[()@]/g, '\\$&')} \\| ${metric} \\|.*\\| (\\S+) \\|$`, 'm'))?.[1];

describe('quest check', () => {
  it.each([
    ['eval-regression', 224],
    ['eval-regression-gpu', 224],
    ['attention-h100', 48],
    ['latency-7b-h100', 16],
  ])('passes the committed baseline %s against itself (%i comparisons)', async (name, n) => {
    const r = await quest(['check', '--baseline', path.join(baselines, name), '--current', path.join(baselines, name)]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${n} passed, 0 failed$`, 'm'));
  });

  it('fails a run whose sparse policies ignore their budgets (tokens read and score of dense)', async () => {
    const cur = planted(({ rows }) => {
      for (const r of rows.filter((x) => x.policy !== 'dense')) {
        const dense = row(rows, r.task, r.length, 'dense', null);
        Object.assign(r, { score: dense.score, tokensPerStep: dense.tokensPerStep, kvKiBPerStep: dense.kvKiBPerStep, metaKiBPerStep: dense.metaKiBPerStep });
      }
    });
    const r = await quest(['check', '--baseline', evalBaseline, '--current', cur]);
    expect(r.exitCode).toBe(1);
    // Quest scored as dense already: only what it reads gives it away.
    expect(status(r.stdout, 'passkey L2048 quest@256 decode', 'score')).toBeUndefined();
    expect(status(r.stdout, 'passkey L2048 quest@256 decode', 'tokensPerStep')).toBe('CHANGED');
    expect(status(r.stdout, 'passkey L2048 quest@256 decode', 'metaKiBPerStep')).toBe('CHANGED');
    expect(status(r.stdout, 'niah_single_1 L2048 h2o@256 decode', 'score')).toBe('RISE');
    expect(r.stdout).toMatch(/\| niah_single_1 L2048 h2o@256 decode \| score \| 0\.00 \| 100\.00 \| \+100\.0 pts \| RISE \|/);
    // Every sparse row (48 of 56) reads as dense does.
    expect(r.stdout.match(/\| tokensPerStep \|.*\| CHANGED \|/g)).toHaveLength(48);
  });

  it('fails a score rise beyond --max-accuracy-rise, which defaults to the drop tolerance', async () => {
    const cur = planted(({ rows }) => (row(rows, 'passkey', 2048, 'h2o', 256).score += 20));
    const r = await quest(['check', '--baseline', evalBaseline, '--current', cur]);
    expect(r.exitCode).toBe(1);
    expect(status(r.stdout, 'passkey L2048 h2o@256 decode', 'score')).toBe('RISE');
    expect(r.stdout).toMatch(/^223 passed, 1 failed$/m);
    expect((await quest(['check', '--baseline', evalBaseline, '--current', cur, '--max-accuracy-rise', '20'])).exitCode).toBe(0);
    expect((await quest(['check', '--baseline', evalBaseline, '--current', cur, '--max-accuracy-drop', '20'])).exitCode).toBe(0);
    const bad = await quest(['check', '--baseline', evalBaseline, '--current', cur, '--max-accuracy-rise', 'x']);
    expect(bad.stderr.trim()).toBe('quest: --max-accuracy-rise: "x" is not a number >= 0');
  });

  it('fails a change in tokens or bytes read beyond --max-read-change', async () => {
    const cur = planted(({ rows }) => (row(rows, 'niah_single_2', 4096, 'quest', 1024).kvKiBPerStep *= 1.02));
    const r = await quest(['check', '--baseline', evalBaseline, '--current', cur]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/\| niah_single_2 L4096 quest@1024 decode \| kvKiBPerStep \| .* \| \+2\.0% \| CHANGED \|/);
    expect((await quest(['check', '--baseline', evalBaseline, '--current', cur, '--max-read-change', '0.03'])).exitCode).toBe(0);
  });

  it('fails on a planted accuracy drop and a slower kernel, naming them', async () => {
    const cur = planted(({ rows }) => (row(rows, 'passkey', 2048, 'quest', 256).score -= 20));
    const r = await quest(['check', '--baseline', evalBaseline, '--current', cur]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/\| passkey L2048 quest@256 decode \| score \| 100\.00 \| 80\.00 \| -20\.0 pts \| REGRESSION \|/);
    expect(r.stdout).toMatch(/^223 passed, 1 failed$/m);

    const att = path.join(baselines, 'attention-h100');
    const rows = read(path.join(att, 'rows.json'));
    rows[3].totalUs *= 1.5;
    // Quest at 8K reading what dense reads.
    rows[3].tokensRead = rows[2].tokensRead;
    const dir = tempDir();
    writeFileSync(path.join(dir, 'rows.json'), JSON.stringify(rows));
    writeFileSync(path.join(dir, 'results.json'), readFileSync(path.join(att, 'results.json')));
    const k = await quest(['check', '--baseline', att, '--current', dir]);
    expect(k.exitCode).toBe(1);
    expect(status(k.stdout, 'L8192 quest@2048', 'totalUs')).toBe('REGRESSION');
    expect(status(k.stdout, 'L8192 quest@2048', 'tokensRead')).toBe('CHANGED');
    expect(k.stdout).toMatch(/\| L8192 quest@2048 \| totalUs \| .* \| x1\.500 \| REGRESSION \|/);
  });

  it('fails rows that vanish and rows that appear', async () => {
    const cur = planted(({ rows }) => {
      rows.splice(rows.indexOf(row(rows, 'passkey', 4096, 'streaming', 1024)), 1);
      rows.push({ ...row(rows, 'passkey', 4096, 'quest', 1024), budget: 512 });
    });
    const r = await quest(['check', '--baseline', evalBaseline, '--current', cur]);
    expect(r.exitCode).toBe(1);
    expect(status(r.stdout, 'passkey L4096 streaming@1024 decode', 'row')).toBe('MISSING');
    expect(status(r.stdout, 'passkey L4096 quest@512 decode', 'row')).toBe('NEW');
    expect(r.stdout).toMatch(/^220 passed, 2 failed$/m);
  });

  it('refuses runs of different configurations in one line, naming what differs', async () => {
    const cur = planted(({ rows, config }) => {
      config.lengths = [2048];
      config.budgets = [256];
      rows.splice(0, rows.length, ...rows.filter((r) => r.length === 2048 && r.budget !== 1024));
    });
    const r = await quest(['check', '--baseline', evalBaseline, '--current', cur]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^quest: --current \S+ ran another configuration than --baseline \S+ \(budgets, lengths differ\); rerun it as the baseline ran, or pass --allow-config-change$/m);
    // Allowed: the rows both runs have are compared, the others counted in one line.
    const allowed = await quest(['check', '--baseline', evalBaseline, '--current', cur, '--allow-config-change']);
    expect(allowed.exitCode).toBe(0);
    expect(allowed.stderr).toMatch(/configurations differ \(budgets, lengths\); comparing the rows both have, 40 only in the baseline and 0 only in the current run left out/);
    expect(allowed.stdout).toMatch(/^64 passed, 0 failed$/m);
    // The committed CPU and GPU baselines ran on different backends.
    const gpu = await quest(['check', '--baseline', evalBaseline, '--current', path.join(baselines, 'eval-regression-gpu')]);
    expect(gpu.exitCode).toBe(1);
    expect(gpu.stderr).toMatch(/\(backend differ\)/);
  });

  it('warns when a result comes from a tree with uncommitted changes', async () => {
    const dirty = planted((res) => Object.assign(res, { gitSha: 'a'.repeat(40), gitDirty: true, gitDiffSha256: 'b'.repeat(64) }));
    const clean = planted((res) => Object.assign(res, { gitSha: 'c'.repeat(40), gitDirty: false, gitDiffSha256: null }));
    const r = await quest(['check', '--baseline', path.join(clean, 'results.json'), '--current', dirty]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([`quest: warning: --current ${path.join(dirty, 'results.json')} comes from a tree with uncommitted changes (aaaaaaa, diff sha256 bbbbbbbbbbbb): it cannot be tied to a commit`]);
  });

  it('goes by the kind a file names, and reads files written before files named one', async () => {
    // The committed baselines name no kind; the same rows with their kind named compare as equal.
    const att = path.join(baselines, 'attention-h100');
    const named = tempDir();
    writeFileSync(path.join(named, 'rows.json'), JSON.stringify({ kind: 'attention', rows: read(path.join(att, 'rows.json')) }));
    writeFileSync(path.join(named, 'results.json'), JSON.stringify({ kind: 'attention', ...read(path.join(att, 'results.json')) }));
    const same = await quest(['check', '--baseline', att, '--current', named]);
    expect(same.exitCode).toBe(0);
    expect(same.stdout).toMatch(/^48 passed, 0 failed$/m);
    // An eval's rows under another kind's name are taken as that kind.
    const misnamed = planted((res) => Object.assign(res, { kind: 'latency' }));
    const r = await quest(['check', '--baseline', evalBaseline, '--current', misnamed]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('quest: --current holds latency rows but --baseline holds eval rows');
    const unknown = planted((res) => Object.assign(res, { kind: 'heatmap' }));
    const u = await quest(['check', '--baseline', evalBaseline, '--current', unknown]);
    expect(u.stderr.trim()).toBe(`quest: --current ${path.join(unknown, 'results.json')}: kind "heatmap" is not one of eval, latency, attention, sweep, linear`);
  });

  it('names a baseline that is not there', async () => {
    const r = await quest(['check', '--baseline', '/nonexistent/results.json', '--current', evalBaseline]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('quest: --baseline /nonexistent/results.json: no such file (a results.json or rows.json of quest)');
  });
});

describe('provenance', () => {
  const git = (cwd: string, ...args: string[]) => execa('git', args, { cwd });

  it('records the commit and, in a dirty tree, a hash of the diff and the untracked files', async () => {
    const root = tempDir();
    await git(root, 'init', '-q');
    writeFileSync(path.join(root, 'a.txt'), 'one\n');
    await git(root, 'add', 'a.txt');
    await git(root, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'first');
    const sha = (await git(root, 'rev-parse', 'HEAD')).stdout;
    expect(await gitState(undefined, root)).toEqual({ gitSha: sha, gitDirty: false, gitDiffSha256: null, gitChanges: [] });

    writeFileSync(path.join(root, 'a.txt'), 'two\n');
    writeFileSync(path.join(root, 'new.txt'), 'three\n');
    symlinkSync('a.txt', path.join(root, 'link'));
    // The run's own output folder is not part of the code it ran.
    mkdirSync(path.join(root, 'out'));
    writeFileSync(path.join(root, 'out', 'run.json'), '{}');
    const state = await gitState(path.join(root, 'out'), root);
    // The hash as its comment defines it, from git's own output.
    const diff = (await execa('git', ['diff', 'HEAD', '--binary'], { cwd: root, encoding: 'buffer', stripFinalNewline: false })).stdout;
    const content = createHash('sha256').update('three\n').digest('hex');
    const link = createHash('sha256').update('a.txt').digest('hex');
    const expected = createHash('sha256').update(diff).update(`link ${link}\nnew.txt ${content}\n`).digest('hex');
    expect(state).toEqual({ gitSha: sha, gitDirty: true, gitDiffSha256: expected, gitChanges: [' M a.txt', '?? link', '?? new.txt'] });
    // Any change of the code changes the hash.
    writeFileSync(path.join(root, 'new.txt'), 'four\n');
    expect((await gitState(path.join(root, 'out'), root)).gitDiffSha256).not.toBe(expected);
  });
  it('takes the state recorded where the tree was packed, from QUEST_GIT_STATE, and names a bad one', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'git-state.json');
    const recorded = { gitSha: 'c'.repeat(40), gitDirty: false, gitDiffSha256: null, gitChanges: [] };
    writeFileSync(file, JSON.stringify(recorded));
    const restore = setEnv('QUEST_GIT_STATE', file);
    try {
      expect(await gitState()).toEqual(recorded);
      writeFileSync(file, '{"gitSha": 1}');
      await expect(gitState()).rejects.toThrow(`QUEST_GIT_STATE ${file}: not a git state written by tools/gpu-bundle.sh`);
    } finally {
      restore();
    }
  });
});
