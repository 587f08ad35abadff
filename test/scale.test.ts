// Spreading a run: shards and their merge, workers, resuming after a kill. Each test makes
// its own reference run and folders, and ends only the processes it started.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { execaNode } from 'execa';
import { describe, expect, it } from 'vitest';
import { quest, repo, tempDirs } from './helpers.js';

const tempDir = tempDirs();

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

/** The reference: the same eval in one process, into a folder of the calling test. */
async function single(): Promise<string> {
  const dir = tempDir();
  expect((await quest([...args, '--output-path', dir])).exitCode).toBe(0);
  return dir;
}

/** Waits until a run's samples.jsonl holds at least n records. */
async function recordsAtLeast(dir: string, n: number): Promise<void> {
  const file = path.join(dir, 'samples.jsonl');
  while (!existsSync(file) || readFileSync(file, 'utf8').split('\n').length <= n) await new Promise((r) => setTimeout(r, 20));
}

/** The pool workers among a process's children (Linux: /proc/<pid>/task/<tid>/children). */
function workerPids(pid: number): number[] {
  // A thread or process may end between the listing and the read.
  const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  const kids = readdirSync(`/proc/${pid}/task`).flatMap((t) => read(`/proc/${pid}/task/${t}/children`).split(' ').filter(Boolean).map(Number));
  return kids.filter((k) => read(`/proc/${k}/cmdline`).includes(path.join('dist', 'run', 'worker.js')));
}

describe('spreading a run', () => {
  it('shards merge into the tables of one run, and refuse other configurations', async () => {
    const one = await single();
    const a = tempDir();
    const b = tempDir();
    expect((await quest([...args, '--shard', '1/2', '--output-path', a])).exitCode).toBe(0);
    expect((await quest([...args, '--shard', '2/2', '--output-path', b])).exitCode).toBe(0);
    expect(records(a).length + records(b).length).toBe(records(one).length);
    const merged = path.join(tempDir(), 'merged');
    const r = await quest(['merge', a, b, '--output-path', merged]);
    expect(r.exitCode).toBe(0);
    expect(byKey(records(merged))).toEqual(byKey(records(one)));
    expect(table(merged)).toEqual(table(one));
    const other = tempDir();
    expect((await quest(['eval', '--lengths', '256', '--samples', '1', '--output-path', other])).exitCode).toBe(0);
    const bad = await quest(['merge', a, other, '--output-path', path.join(tempDir(), 'x')]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/refusing to merge: .* ran different configurations \(policies, budgets, lengths, samples\)/);
  });

  it('two CPU workers give the same records as one process', async () => {
    const one = await single();
    const w = tempDir();
    const r = await quest([...args, '--workers', '2', '--output-path', w]);
    expect(r.exitCode).toBe(0);
    expect(byKey(records(w))).toEqual(byKey(records(one)));
    expect(table(w)).toEqual(table(one));
  });

  it('bench-latency over two CPU workers gives the rows of one process, in the same order', async () => {
    const bench = ['bench-latency', '--model', 'tiny', '--lengths', '256,512', '--policies', 'dense,quest', '--budgets', '64', '--repeats', '1', '--decode-steps', '4'];
    const rows = (dir: string) =>
      JSON.parse(readFileSync(path.join(dir, 'rows.json'), 'utf8')).rows.map((r: Record<string, unknown>) => [r.length, r.policy, r.budget, r.tokensPerStep, r.kvKiBPerStep]);
    const [one, two] = [tempDir(), tempDir()];
    expect((await quest([...bench, '--output-path', one])).exitCode).toBe(0);
    expect((await quest([...bench, '--workers', '2', '--output-path', two])).exitCode).toBe(0);
    expect(rows(two)).toEqual(rows(one));
    expect(rows(one).map((r: unknown[]) => r.slice(0, 2))).toEqual([[256, 'dense'], [256, 'quest'], [512, 'dense'], [512, 'quest']]);
  });

  it('a run killed midway resumes to the same tables, with no record lost or repeated', async () => {
    const one = await single();
    const dir = tempDir();
    const child = execaNode(path.join(repo, 'bin', 'quest.js'), [...args, '--output-path', dir], { reject: false });
    await recordsAtLeast(dir, 3);
    child.kill('SIGKILL');
    await child;
    const partial = records(dir).length;
    expect(partial).toBeLessThan(records(one).length);
    expect((await quest([...args, '--output-path', dir])).exitCode).toBe(0);
    const after = records(dir);
    expect(new Set(after.map((r) => r.key)).size).toBe(after.length);
    expect(byKey(after)).toEqual(byKey(records(one)));
    expect(table(dir)).toEqual(table(one));
  });

  it('a worker killed mid-run is reported and replaced, and the run still completes', async () => {
    const one = await single();
    const dir = tempDir();
    const child = execaNode(path.join(repo, 'bin', 'quest.js'), [...args, '--workers', '2', '--output-path', dir], { reject: false });
    await recordsAtLeast(dir, 2);
    // SIGKILL one worker of this run, found among this test's child's children; past the
    // first records every worker is holding its next unit, so that unit must be retried.
    const workers = workerPids(child.pid!);
    expect(workers).toHaveLength(2);
    process.kill(Math.max(...workers), 'SIGKILL');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/worker \d died \(SIGKILL\) running \S+; retrying it once/);
    expect(byKey(records(dir))).toEqual(byKey(records(one)));
    expect(table(dir)).toEqual(table(one));
  });

  it.each(['0/2', '3/2', '2', 'a/b'])('names a bad shard spec %s', async (spec) => {
    const r = await quest([...args, '--shard', spec]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: --shard: "${spec}" is not i/n with 1 <= i <= n (for example 2/8)`);
  });
});
