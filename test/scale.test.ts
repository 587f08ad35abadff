// Spreading a run: shards and their merge, workers, resuming after a kill, and the CI gate.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa, execaNode } from 'execa';
import { describe, expect, it } from 'vitest';
import { quest, repo, tempDir } from './helpers.js';

const args = ['eval', '--lengths', '256,512', '--samples', '3', '--policies', 'dense,quest', '--budgets', '64'];
const records = (dir: string) =>
  readFileSync(path.join(dir, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
/** A record without what depends on the run's timing. */
const stable = (r: Record<string, unknown>) => {
  const { stats, ...rest } = r as { stats: Record<string, unknown> };
  const { selectMs: _s, prefillMs: _p, decodeMsPerStep: _d, ...counts } = stats;
  return { ...rest, counts };
};
const byKey = (rs: Record<string, unknown>[]) => [...rs].sort((a, b) => String(a.key).localeCompare(String(b.key))).map(stable);
/** Table rows without timings: what must not depend on how the run was spread. */
const table = (dir: string) =>
  JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')).rows.map((r: Record<string, unknown>) => [r.task, r.length, r.policy, r.budget, r.n, r.score, r.tokensPerStep, r.kvKiBPerStep, r.metaKiBPerStep]);

describe('spreading a run', () => {
  const single = tempDir();
  it('runs once in one process', async () => {
    expect((await quest([...args, '--output-path', single])).exitCode).toBe(0);
  });

  it('shards merge into the tables of one run, and refuse other configurations', async () => {
    const a = tempDir();
    const b = tempDir();
    expect((await quest([...args, '--shard', '1/2', '--output-path', a])).exitCode).toBe(0);
    expect((await quest([...args, '--shard', '2/2', '--output-path', b])).exitCode).toBe(0);
    expect(records(a).length + records(b).length).toBe(records(single).length);
    const merged = path.join(tempDir(), 'merged');
    const r = await quest(['merge', a, b, '--output-path', merged]);
    expect(r.exitCode).toBe(0);
    expect(byKey(records(merged))).toEqual(byKey(records(single)));
    expect(table(merged)).toEqual(table(single));
    const other = tempDir();
    expect((await quest(['eval', '--lengths', '256', '--samples', '1', '--output-path', other])).exitCode).toBe(0);
    const bad = await quest(['merge', a, other, '--output-path', path.join(tempDir(), 'x')]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/refusing to merge: .* ran different configurations \(policies, budgets, lengths, samples\)/);
  });

  it('two CPU workers give the same records as one process', async () => {
    const w = tempDir();
    const r = await quest([...args, '--workers', '2', '--output-path', w]);
    expect(r.exitCode).toBe(0);
    expect(byKey(records(w))).toEqual(byKey(records(single)));
    expect(table(w)).toEqual(table(single));
  });

  it('bench-latency over two CPU workers gives the rows of one process, in the same order', async () => {
    const bench = ['bench-latency', '--model', 'tiny', '--lengths', '256,512', '--policies', 'dense,quest', '--budgets', '64', '--repeats', '1', '--decode-steps', '4'];
    const rows = (dir: string) =>
      JSON.parse(readFileSync(path.join(dir, 'rows.json'), 'utf8')).map((r: Record<string, unknown>) => [r.length, r.policy, r.budget, r.tokensPerStep, r.kvKiBPerStep]);
    const [one, two] = [tempDir(), tempDir()];
    expect((await quest([...bench, '--output-path', one])).exitCode).toBe(0);
    expect((await quest([...bench, '--workers', '2', '--output-path', two])).exitCode).toBe(0);
    expect(rows(two)).toEqual(rows(one));
    expect(rows(one).map((r: unknown[]) => r.slice(0, 2))).toEqual([[256, 'dense'], [256, 'quest'], [512, 'dense'], [512, 'quest']]);
  });

  it('a run killed midway resumes to the same tables, with no record lost or repeated', async () => {
    const dir = tempDir();
    const child = execaNode(path.join(repo, 'bin', 'quest.js'), [...args, '--output-path', dir], { reject: false });
    const file = path.join(dir, 'samples.jsonl');
    while (!existsSync(file) || readFileSync(file, 'utf8').split('\n').length < 4) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await child;
    const partial = records(dir).length;
    expect(partial).toBeLessThan(records(single).length);
    expect((await quest([...args, '--output-path', dir])).exitCode).toBe(0);
    const after = records(dir);
    expect(new Set(after.map((r) => r.key)).size).toBe(after.length);
    expect(byKey(after)).toEqual(byKey(records(single)));
    expect(table(dir)).toEqual(table(single));
  });

  it('a worker killed mid-run is reported and replaced, and the run still completes', async () => {
    const dir = tempDir();
    const child = execaNode(path.join(repo, 'bin', 'quest.js'), [...args, '--workers', '2', '--output-path', dir], { reject: false });
    const file = path.join(dir, 'samples.jsonl');
    while (!existsSync(file) || readFileSync(file, 'utf8').split('\n').length < 3) await new Promise((r) => setTimeout(r, 20));
    // SIGKILL one worker process of this run (the newest); past its first record a worker is
    // always holding its next unit, so that unit must be retried.
    const killed = await execa('pkill', ['-9', '-n', '-f', 'dist/run/worker.js'], { reject: false });
    expect(killed.exitCode).toBe(0);
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/worker \d died \(SIGKILL\) running \S+; retrying it once/);
    expect(byKey(records(dir))).toEqual(byKey(records(single)));
    expect(table(dir)).toEqual(table(single));
  });

  it.each(['0/2', '3/2', '2', 'a/b'])('names a bad shard spec %s', async (spec) => {
    const r = await quest([...args, '--shard', spec]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: --shard: "${spec}" is not i/n with 1 <= i <= n (for example 2/8)`);
  });
});

describe('quest check', () => {
  const baseline = path.join(repo, 'results', 'baseline', 'eval-regression', 'results.json');

  it('passes a run against itself', async () => {
    const r = await quest(['check', '--baseline', baseline, '--current', baseline]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^56 passed, 0 failed$/m);
  });

  it('fails on a planted accuracy drop and a slower kernel, naming them', async () => {
    const dir = tempDir();
    const res = JSON.parse(readFileSync(baseline, 'utf8'));
    res.rows.find((x: { task: string; policy: string; budget: number }) => x.task === 'passkey' && x.policy === 'quest' && x.budget === 256).score -= 20;
    writeFileSync(path.join(dir, 'results.json'), JSON.stringify(res));
    const r = await quest(['check', '--baseline', baseline, '--current', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/\| passkey L2048 quest@256 decode \| score \| 100\.00 \| 80\.00 \| -20\.0 pts \| REGRESSION \|/);
    expect(r.stdout).toMatch(/^55 passed, 1 failed$/m);

    const att = path.join(repo, 'results', 'baseline', 'attention-h100', 'rows.json');
    const rows = JSON.parse(readFileSync(att, 'utf8'));
    rows[3].totalUs *= 1.5;
    writeFileSync(path.join(dir, 'rows.json'), JSON.stringify(rows));
    const k = await quest(['check', '--baseline', att, '--current', path.join(dir, 'rows.json')]);
    expect(k.exitCode).toBe(1);
    expect(k.stdout).toMatch(/totalUs .* x1\.500 \| REGRESSION/);
  });

  it('names a baseline that is not there', async () => {
    const r = await quest(['check', '--baseline', '/nonexistent/results.json', '--current', baseline]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('quest: --baseline /nonexistent/results.json: no such file (a results.json or rows.json of quest)');
  });
});
