// At the edges, as a careless user meets them (issue #18): interrupts, two runs into one
// folder, unusable output paths, too many workers, progress without a terminal, help, and
// config files spelled as the flags are. Processes are ended by their pid, under time limits.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { execa, execaNode, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bar } from '../src/cli/progress.js';
import { readConfigFile } from '../src/config/index.js';
import { noGpu, nvidiaDriver, type NativeBackendInfo } from '../src/engine/index.js';
import { TASKS } from '../src/tasks/index.js';
import { quest, repo, tempDir } from './helpers.js';

const bin = path.join(repo, 'bin', 'quest.js');
// Eight units of a few tenths of a second each on the CPU: long enough to interrupt.
const run = ['eval', '--lengths', '256', '--samples', '4', '--policies', 'dense,quest', '--budgets', '64'];
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n');
const keys = (dir: string) => lines(path.join(dir, 'samples.jsonl')).map((l) => JSON.parse(l).key as string);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (up to 60 s) until `file` has at least `n` lines. */
async function linesIn(file: string, n: number): Promise<void> {
  for (let t = 0; t < 1200; t++) {
    if (existsSync(file) && readFileSync(file, 'utf8').split('\n').length > n) return;
    await sleep(50);
  }
  throw new Error(`${file} never reached ${n} lines`);
}

/** A process that has ended (gone, or a zombie waiting for its reaper). */
function ended(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
  } catch {
    return true;
  }
}

/** The pid of a process that has just exited. */
async function deadPid(): Promise<number> {
  const p = execa(process.execPath, ['-e', '']);
  await p;
  return p.pid!;
}

const started: ResultPromise[] = [];
const start = (args: string[], opts: Record<string, unknown> = {}) => {
  const p = execaNode(bin, args, { reject: false, timeout: 60_000, ...opts });
  started.push(p);
  return p;
};
afterEach(async () => {
  // A failed assertion must not leave a run behind: each is ended by its own pid.
  for (const p of started.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

describe('Ctrl-C and SIGTERM', () => {
  it('SIGINT stops the bar, names the records kept and the command that goes on, exits 130; that command finishes the run exactly', async () => {
    const dir = tempDir();
    const child = start([...run, '--output-path', dir]);
    await linesIn(path.join(dir, 'samples.jsonl'), 1);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    const kept = keys(dir);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(8);
    const err = r.stderr.trim().split('\n');
    const command = `node bin/quest.js ${run.join(' ')} --output-path ${dir}`;
    expect(err.slice(-2)).toEqual([
      `quest: SIGINT: stopped with ${kept.length} of 8 records in ${path.join(dir, 'samples.jsonl')}; to go on from there:`,
      `  ${command}`,
    ]);
    expect(readdirSync(dir)).not.toContain('quest.lock');
    // Vitest runs from the repository root, where the printed command is meant to be typed.
    const [node, ...args] = command.split(' ');
    const resumed = await execa(node, args, { cwd: repo, reject: false, timeout: 60_000 });
    expect(resumed.exitCode).toBe(0);
    const all = keys(dir);
    expect(all.slice(0, kept.length)).toEqual(kept);
    const fresh = tempDir();
    expect((await quest([...run, '--output-path', fresh])).exitCode).toBe(0);
    expect([...all].sort()).toEqual([...keys(fresh)].sort());
  });

  it.runIf(process.platform === 'linux')('SIGTERM ends the run and its workers, exits 143 and leaves no lock', async () => {
    const dir = tempDir();
    const child = start([...run, '--workers', '2', '--output-path', dir]);
    await linesIn(path.join(dir, 'samples.jsonl'), 1);
    const workers = readdirSync(`/proc/${child.pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${child.pid}/task/${t}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number),
    );
    expect(workers).toHaveLength(2);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    expect(r.stderr).toContain(`quest: SIGTERM: stopped with ${keys(dir).length} of 8 records in ${path.join(dir, 'samples.jsonl')}`);
    for (let t = 0; t < 100 && !workers.every(ended); t++) await sleep(50);
    expect(workers.filter((w) => !ended(w))).toEqual([]);
    expect(readdirSync(dir)).not.toContain('quest.lock');
  });

  const script = existsSync('/usr/bin/script') && process.platform === 'linux';
  it.runIf(script)('Ctrl-C on a terminal gives the cursor and line wrap back', async () => {
    const dir = tempDir();
    // script(1) runs the command on a pseudo-terminal; ^C typed there is a real Ctrl-C.
    const cmd = [process.execPath, bin, ...run, '--output-path', dir].join(' ');
    const child = execa('script', ['-qefc', cmd, '/dev/null'], { reject: false, stdin: 'pipe', timeout: 60_000 });
    started.push(child);
    await linesIn(path.join(dir, 'samples.jsonl'), 1);
    child.stdin!.write('\x03');
    const r = await child;
    expect(r.exitCode).toBe(130);
    const out = String(r.stdout);
    const hidden = out.indexOf('\x1b[?25l');
    expect(hidden).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('\x1b[?25h', hidden)).toBeGreaterThan(hidden);
    const wrapOff = out.indexOf('\x1b[?7l');
    expect(wrapOff).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('\x1b[?7h', wrapOff)).toBeGreaterThan(wrapOff);
    expect(out).toContain('quest: SIGINT: stopped with');
  });
});

describe('one run at a time in an output folder', () => {
  it('a second run refuses, naming the folder and the pid of the run writing into it', async () => {
    const dir = tempDir();
    const first = start([...run, '--output-path', dir]);
    const lock = path.join(dir, 'quest.lock');
    for (let t = 0; t < 1200 && !existsSync(lock); t++) await sleep(50);
    const owner = JSON.parse(readFileSync(lock, 'utf8'));
    expect(owner.pid).toBe(first.pid);
    const second = await quest([...run, '--output-path', dir]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr.trim()).toBe(
      `quest: --output-path ${dir}: another quest run (pid ${first.pid}, since ${owner.since}) is writing into it; wait for it to end or choose another folder`,
    );
    expect((await first).exitCode).toBe(0);
    expect(new Set(keys(dir)).size).toBe(keys(dir).length);
    expect(keys(dir)).toHaveLength(8);
    expect(existsSync(lock)).toBe(false);
  });

  it('a lock left by a process that is gone is taken over, saying so', async () => {
    const dir = tempDir();
    const pid = await deadPid();
    writeFileSync(path.join(dir, 'quest.lock'), JSON.stringify({ pid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' }));
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--output-path', dir]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(`quest: --output-path ${dir}: taking over the lock of pid ${pid}, which is no longer running\n`);
    expect(existsSync(path.join(dir, 'quest.lock'))).toBe(false);
  });

  it("another host's lock is not guessed at: the message says which file to remove", async () => {
    const dir = tempDir();
    const lock = path.join(dir, 'quest.lock');
    writeFileSync(lock, JSON.stringify({ pid: 4242, host: 'elsewhere', since: '2026-01-01T00:00:00.000Z' }));
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--output-path', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: --output-path ${dir}: in use by pid 4242 on elsewhere since 2026-01-01T00:00:00.000Z; if that run has ended, remove ${lock}`);
    writeFileSync(lock, 'garbage');
    const g = await quest(['eval', '--lengths', '256', '--limit', '1', '--output-path', dir]);
    expect(g.exitCode).toBe(1);
    expect(g.stderr.trim()).toBe(`quest: ${lock}: not a quest lock file; remove it if no quest run is writing into ${dir}`);
  });
  it('bench-latency keeps out of a folder another live run holds', async () => {
    const dir = tempDir();
    // This test's own process stands for the live run holding the folder.
    writeFileSync(path.join(dir, 'quest.lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' }));
    const r = await quest(['bench-latency', '--model', 'tiny', '--lengths', '256', '--device', 'cpu', '--output-path', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(
      `quest: --output-path ${dir}: another quest run (pid ${process.pid}, since 2026-01-01T00:00:00.000Z) is writing into it; wait for it to end or choose another folder`,
    );
  });
});

describe('unusable output paths are refused at once', () => {
  const refused = async (args: string[], message: string) => {
    // Before the check, --output-path /proc/x spun in Node's recursive mkdir for ever.
    const r = await start(args, { timeout: 20_000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(message);
  };

  it('an empty --output-path', async () => {
    await refused(['eval', '--output-path', ''], 'quest: --output-path: empty; name a folder (or leave the flag out for a new one under runs/)');
  });

  it('a path under /proc or /sys, in eval and bench-latency', async () => {
    await refused(['eval', '--output-path', '/proc/x'], 'quest: --output-path /proc/x: /proc is the kernel\'s file system, not a place for output');
    await refused(['bench-latency', '--output-path', '/sys/x/y'], 'quest: --output-path /sys/x/y: /sys is the kernel\'s file system, not a place for output');
  });

  it('a path below a file', async () => {
    const file = path.join(tempDir(), 'f');
    writeFileSync(file, '');
    const out = path.join(file, 'out');
    await refused(['eval', '--output-path', out], `quest: --output-path ${out}: cannot create it (ENOTDIR: not a directory, mkdir '${out}')`);
  });
});

describe('sizes a run', () => {
  it('starts no more workers than cores or units, saying so', async () => {
    const dir = tempDir();
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--workers', '64', '--output-path', dir]);
    expect(r.exitCode).toBe(0);
    const cores = os.availableParallelism();
    expect(r.stderr).toContain(`quest: --workers 64: starting 1, for ${cores} CPU core${cores > 1 ? 's' : ''} and 1 job to run\n`);
    expect(keys(dir)).toHaveLength(1);
  });

  it('refuses up front a length whose generation does not fit the model, naming the flag', async () => {
    const dir = path.join(tempDir(), 'out');
    // models/quest-tiny/config.json: max_position_embeddings 33024; passkey generates 10 tokens.
    const r = await quest(['eval', '--lengths', '33020', '--output-path', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(
      `quest: --lengths 33020: passkey generates 10 tokens after a prompt of that length, 33030 positions, but ${path.join(repo, 'models', 'quest-tiny', 'config.json')} allows 33024 (at most 33014 for passkey)`,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('says what --limit cut from a length sweep', async () => {
    const r = await quest(['eval', '--lengths', '128,256,512', '--samples', '2', '--limit', '3', '--output-path', tempDir()]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('quest: --limit 3: passkey runs 3 of its 6 samples, none at length 512; some at length 256\n');
  });
});

describe('progress without a terminal', () => {
  const sink = () => {
    const text: string[] = [];
    const stream = new Writable({ write: (c, _e, done) => (text.push(String(c)), done()) }) as unknown as NodeJS.WriteStream;
    return { stream, text };
  };

  it('prints done/total, elapsed and ETA every 10 s and once when all is done', () => {
    vi.useFakeTimers();
    try {
      const { stream, text } = sink();
      const p = bar('eval', stream);
      p.start(10, 2);
      vi.advanceTimersByTime(9_000);
      expect(text).toEqual([]);
      p.increment('a');
      p.increment('b');
      vi.advanceTimersByTime(1_000);
      // 2 done in this run in 10 s, 6 left: 30 s.
      expect(text).toEqual(['eval 4/10 | 10s elapsed | eta 30s\n']);
      vi.advanceTimersByTime(60_000);
      expect(text).toHaveLength(7);
      expect(text.at(-1)).toBe('eval 4/10 | 1m10s elapsed | eta 3m30s\n');
      for (let i = 0; i < 6; i++) p.increment('c');
      vi.advanceTimersByTime(5_000);
      p.stop();
      p.stop();
      expect(text).toHaveLength(8);
      expect(text.at(-1)).toBe('eval 10/10 | 1m15s elapsed | eta 0s\n');
      vi.advanceTimersByTime(60_000);
      expect(text).toHaveLength(8);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a run that ends short prints no end line: its error or interrupt says how it ended', () => {
    vi.useFakeTimers();
    try {
      const { stream, text } = sink();
      const p = bar('eval', stream);
      p.start(3);
      p.increment('a');
      p.stop();
      expect(text).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a run with output piped ends with its progress line', async () => {
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--output-path', tempDir()]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/^eval 1\/1 \| \d+s elapsed \| eta 0s$/m);
  });
});

describe('help', () => {
  it('eval --help shows the defaults and every task of the registry', async () => {
    const r = await quest(['eval', '--help']);
    expect(r.exitCode).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const name of Object.keys(TASKS)) expect(help).toContain(` ${name}`);
    expect(help).toContain('comma-separated (default: 1024,2048)');
    expect(help).toContain('(default: models/quest-tiny)');
    expect(help).toContain('samples per task per length (default: 5)');
    expect(help).toContain('(default: dense)');
    expect(help).not.toContain('undefined');
  });

  it('tasks generate writes to --output-path, and the old --out still works unlisted', async () => {
    const dir = tempDir();
    const a = path.join(dir, 'a.jsonl');
    const b = path.join(dir, 'b.jsonl');
    const gen = ['tasks', 'generate', '--task', 'passkey', '--length', '128', '-n', '2'];
    expect((await quest([...gen, '--output-path', a])).exitCode).toBe(0);
    expect((await quest([...gen, '--out', b])).exitCode).toBe(0);
    expect(lines(a)).toHaveLength(2);
    expect(readFileSync(b, 'utf8')).toBe(readFileSync(a, 'utf8'));
    const help = await quest(['tasks', 'generate', '--help']);
    expect(help.stdout).toContain('--output-path <file>');
    expect(help.stdout).not.toContain('--out ');
    const none = await quest(gen);
    expect(none.exitCode).toBe(1);
    expect(none.stderr.trim()).toBe('quest: --output-path: required, the JSONL file to write');
  });

  it("tasks generate reads the long-generation tasks' and InfiniteBench's files", async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out.jsonl');
    const data = (f: string) => lines(path.join(repo, 'datasets', f)).map((l) => JSON.parse(l));
    const gen = async (task: string, ...flags: string[]) => {
      const r = await quest(['tasks', 'generate', '--task', task, '--length', '512', '-n', '9', '--output-path', out, ...flags]);
      expect(r.exitCode, r.stderr).toBe(0);
      return lines(out).map((l) => JSON.parse(l));
    };
    const answers = (rows: { answers: string[] }[]) => rows.map((r) => r.answers[0]);
    const math = path.join(repo, 'datasets', 'math');
    expect(answers(await gen('math500', '--math-file', path.join(math, 'math500-mini.jsonl')))).toEqual(data('math/math500-mini.jsonl').map((r) => r.answer));
    expect(answers(await gen('aime24', '--aime-file', path.join(math, 'aime-mini.jsonl')))).toEqual(data('math/aime-mini.jsonl').map((r) => String(r.Answer)));
    const mine = await gen('math-data', '--data-file', path.join(math, 'data-mini.jsonl'), '--data-fields', 'problem=question,answer=final');
    expect(answers(mine)).toEqual(data('math/data-mini.jsonl').map((r) => r.final));
    const qa = await gen('en_qa', '--infinitebench-dir', path.join(repo, 'datasets', 'infinitebench-fixtures'));
    expect(qa.map((r) => r.input.includes(data('infinitebench-fixtures/longbook_qa_eng.jsonl')[0].input))).toContain(true);
    const bad = await quest(['tasks', 'generate', '--task', 'math-data', '--length', '512', '--output-path', out, '--data-fields', 'problem']);
    expect(bad.stderr.trim()).toBe('quest: --data-fields: "problem" is not problem=<field>,answer=<field>');
  });
});

describe('no GPU', () => {
  const info = (error: string): NativeBackendInfo =>
    ({ cpuThreads: 2, cuda: { compiled: true, architectures: '90', devices: 0, deviceName: '', memoryGiB: 0, error } }) as NativeBackendInfo;

  it('says none was found where no driver is, and keeps the driver message where one is', () => {
    const insufficient = 'CUDA driver version is insufficient for CUDA runtime version';
    expect(noGpu(info(insufficient), false)).toBe('no usable GPU (none found: no NVIDIA driver on this machine)');
    expect(noGpu(info(insufficient), true)).toBe(`no usable GPU (${insufficient})`);
  });

  it.skipIf(nvidiaDriver())('quest env on a machine without a driver', async () => {
    const r = await quest(['env']);
    expect(r.exitCode).toBe(0);
    if (r.stdout.includes('backends built: cpu, cuda')) expect(r.stdout).toContain('gpu:            no usable GPU (none found: no NVIDIA driver on this machine)');
    else expect(r.stdout).toContain('gpu:            not looked for (no CUDA in this build)');
  });
});

describe('config files', () => {
  it('take the flags\' spelling and lone values where lists go; paths are from the file\'s folder', () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'page-size: 32\nlengths: 256\npolicies: dense, quest\nbudgets: "64,128"\nqa-file: squad.json\nhaystack-file: h.txt\nsnapkvWindow: 8\nmodel: m\n');
    expect(readConfigFile(file, 'eval')).toEqual({
      pageSize: 32,
      lengths: [256],
      policies: ['dense', 'quest'],
      budgets: [64, 128],
      qaFiles: [path.join(dir, 'squad.json')],
      haystackFile: path.join(dir, 'h.txt'),
      snapkvWindow: 8,
      model: path.join(dir, 'm'),
    });
    writeFileSync(file, 'model: tiny\n');
    expect(readConfigFile(file, 'bench')).toEqual({ model: 'tiny' });
  });

  it.each([
    ['page-sise: 32', 'unknown key "page-sise"; did you mean "page-size"?'],
    ['lenghts: [256]', 'unknown key "lenghts"; did you mean "lengths"?'],
    ['page-size: big', 'page-size must be integer'],
    ['lengths: [256, x]', 'lengths.1 must be integer'],
    ['length: 256\nlengths: 512', '"length" and "lengths" both set lengths'],
  ])('names a bad key or value: %s', async (yaml, message) => {
    const file = path.join(tempDir(), 'c.yaml');
    writeFileSync(file, yaml + '\n');
    const r = await quest(['eval', '--config', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: ${file}: ${message}`);
  });
});

describe('malformed JSON it reads names the file and the flag', () => {
  it("a corrupt run.json in the output folder", async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'run.json'), 'garbage');
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--output-path', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(new RegExp(`^quest: ${path.join(dir, 'run.json')}: the run's identity \\(run\\.json\\) is not valid JSON`));
  });

  it.each([
    ['null', 'not a results.json or rows.json of quest'],
    ['[1, 2]', 'row 1 is not an object'],
    ['{"rows": [null]}', 'row 1 is not an object'],
  ])('a --baseline holding %s', async (text, why) => {
    const file = path.join(tempDir(), 'results.json');
    writeFileSync(file, text);
    const r = await quest(['check', '--baseline', file, '--current', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: --baseline ${file}: ${why}`);
  });

  it('a --torch file whose rows are not prefill timings, before any measuring', async () => {
    const file = path.join(tempDir(), 'torch.json');
    writeFileSync(file, '{"kind": "prefill", "rows": [null]}');
    const r = await quest(['bench-latency', '--model', 'tiny', '--lengths', '256', '--device', 'cpu', '--torch', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: --torch ${file}: not the JSON tools/bench-torch.py --prefill writes (kind "prefill", rows of model, length, prefillMs, sdpaMs)`);
  });
  it('quest results on a results.json whose rows are not objects, and merge on a malformed shard', async () => {
    const root = tempDir();
    mkdirSync(path.join(root, 'run'));
    writeFileSync(path.join(root, 'run', 'results.json'), '{"rows": [1]}');
    const r = await quest(['results', '--from', root, '--output-path', tempDir()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: ${path.join(root, 'run', 'results.json')}: row 1 is not an object`);
    const shard = tempDir();
    writeFileSync(path.join(shard, 'run.json'), '{}');
    writeFileSync(path.join(shard, 'results.json'), '{"kind": "eval", "shard": {"index": 1}, "rows": []}');
    const m = await quest(['merge', shard, '--output-path', path.join(tempDir(), 'out')]);
    expect(m.exitCode).toBe(1);
    expect(m.stderr.trim()).toBe(`quest: ${path.join(shard, 'results.json')}: "shard" must be {index, count} with 1 <= index <= count, as --shard i/n writes it`);
  });
});
