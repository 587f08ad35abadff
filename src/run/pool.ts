/**
 * Several worker processes (one per GPU with --devices, or --workers N on the CPU), each
 * loading the model once; jobs are dealt out one at a time as workers free up, and every
 * result comes back here, the only writer of the run's files. A worker that dies is
 * reported and its job given to another worker, once. Used by eval (worker.ts) and
 * bench-latency (latency-worker.ts).
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execaNode, getEachMessage, sendMessage, type ResultPromise } from 'execa';
import { QuestError, errorMessage } from '../errors.js';

export type ToWorker<I, J> = { type: 'init'; init: I } | { type: 'job'; job: J } | { type: 'done' };
export type FromWorker<R> = { type: 'ready' } | { type: 'result'; result: R } | { type: 'note'; message: string } | { type: 'error'; message: string };

export interface PoolSpec<I, J, R> {
  /** The worker module, a file of src/run (as built into dist/run). */
  worker: string;
  /** What every worker is sent first (the run's configuration). */
  init: I;
  workers: number;
  devices: number[];
  /** A job's name in messages. */
  key(job: J): string;
  onResult(result: R): void;
  note(message: string): void;
}

export async function runPool<I, J, R>(spec: PoolSpec<I, J, R>, todo: J[]): Promise<void> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), spec.worker);
  // A GPU index counts among the GPUs this process sees, as CUDA numbers them.
  const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',');
  // More CPU workers than cores or jobs only add processes that load the model and wait.
  const cores = os.availableParallelism();
  const workers = Math.min(spec.workers, cores, todo.length);
  if (spec.devices.length === 0 && workers < spec.workers && todo.length > 0)
    spec.note(`--workers ${spec.workers}: starting ${workers}, for ${cores} CPU core${cores > 1 ? 's' : ''} and ${todo.length} job${todo.length > 1 ? 's' : ''} to run`);
  const slots =
    spec.devices.length > 0
      ? spec.devices.map((d) => ({ name: `device ${d}`, env: { CUDA_VISIBLE_DEVICES: visible?.[d] ?? String(d) } }))
      : Array.from({ length: workers }, (_, i) => ({ name: `worker ${i + 1}`, env: {} as Record<string, string> }));
  const threads = String(Math.max(1, Math.floor(cores / slots.length)));
  const queue = [...todo];
  const attempts = new Map<string, number>();
  const failures: string[] = [];

  const serve = async (slot: (typeof slots)[number]): Promise<void> => {
    while (queue.length > 0) {
      let current: J | null = null;
      let fatal: string | null = null;
      const child: ResultPromise<{ ipc: true; reject: false; env: Record<string, string>; stderr: 'pipe' }> = execaNode(script, [], {
        ipc: true,
        reject: false,
        stderr: 'pipe',
        env: { ...slot.env, QUEST_THREADS: process.env.QUEST_THREADS ?? threads },
      });
      child.sendMessage({ type: 'init', init: spec.init } as ToWorker<I, J>).catch(() => undefined);
      const next = () => {
        current = queue.shift() ?? null;
        const msg: ToWorker<I, J> = current ? { type: 'job', job: current } : { type: 'done' };
        return child.sendMessage(msg).catch(() => undefined);
      };
      for await (const raw of child.getEachMessage()) {
        const msg = raw as FromWorker<R>;
        if (msg.type === 'note') {
          spec.note(`${slot.name}: ${msg.message}`);
          continue;
        }
        if (msg.type === 'ready') await next();
        else if (msg.type === 'result') {
          spec.onResult(msg.result);
          await next();
        } else if (msg.type === 'error') fatal = msg.message;
        if (current === null && msg.type !== 'error') break;
      }
      const result = await child;
      if (fatal) throw new QuestError(fatal);
      if (current === null) return;
      const job: J = current;
      const key = spec.key(job);
      const tries = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, tries);
      const why = result.signal ?? `exit code ${result.exitCode}`;
      const said = String(result.stderr ?? '').trim().split('\n').pop();
      spec.note(`${slot.name} died (${why}${said ? `: ${said}` : ''}) running ${key}${tries < 2 ? '; retrying it once' : '; not retrying again'}`);
      if (tries < 2) queue.push(job);
      else failures.push(key);
    }
  };
  await Promise.all(slots.map(serve));
  if (failures.length) throw new QuestError(`${failures.length} job(s) failed twice (${failures.join(', ')}); the results of the others are kept, rerun to retry`);
}

/**
 * A worker's side: answers `init` with `ready`, each job with its result, passing on the lines
 * a job notes as it runs; any error ends it.
 */
export async function serveJobs<I, J, R>(open: (init: I) => void | Promise<void>, run: (job: J, note: (message: string) => void) => Promise<R>): Promise<void> {
  const send = (m: FromWorker<R>) => sendMessage(m);
  const note = (message: string) => void send({ type: 'note', message }).catch(() => undefined);
  try {
    for await (const raw of getEachMessage()) {
      const msg = raw as ToWorker<I, J>;
      if (msg.type === 'init') {
        await open(msg.init);
        await send({ type: 'ready' });
      } else if (msg.type === 'job') {
        await send({ type: 'result', result: await run(msg.job, note) });
      } else break;
    }
  } catch (err) {
    await send({ type: 'error', message: errorMessage(err) });
    process.exitCode = 1;
  }
}
