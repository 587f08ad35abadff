/**
 * Several worker processes (one per GPU with --devices, or --workers N on the CPU), each
 * loading the model once; units are dealt out one at a time, with the tokens prepared here,
 * as workers free up, and every record comes back here, the only writer of the run's files.
 * A worker that dies is reported and its unit given to another worker, once.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execaNode, type ResultPromise } from 'execa';
import type { EvalConfig } from '../config/index.js';
import { QuestError } from '../errors.js';
import type { Tokens } from './eval.js';
import type { EvalRecord } from './records.js';
import type { Unit } from './units.js';

export type ToWorker = { type: 'init'; cfg: EvalConfig } | { type: 'unit'; unit: Unit; tokens: Tokens } | { type: 'done' };
export type FromWorker = { type: 'ready' } | { type: 'record'; record: EvalRecord } | { type: 'error'; message: string };

const workerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

export async function runPool(
  cfg: EvalConfig,
  todo: Unit[],
  tokens: Map<string, Tokens>,
  onRecord: (r: EvalRecord) => void,
  note: (m: string) => void,
): Promise<void> {
  const slots = cfg.devices.length > 0 ? cfg.devices.map((d) => ({ name: `device ${d}`, env: { CUDA_VISIBLE_DEVICES: String(d) } })) : Array.from({ length: cfg.workers }, (_, i) => ({ name: `worker ${i + 1}`, env: {} as Record<string, string> }));
  const threads = String(Math.max(1, Math.floor(os.availableParallelism() / slots.length)));
  const queue = [...todo];
  const attempts = new Map<string, number>();
  const failures: string[] = [];
  // Workers open the same model from the same config, without sharding or pooling of their own.
  const workerCfg: EvalConfig = { ...cfg, workers: 1, devices: [], shard: null };

  const serve = async (slot: (typeof slots)[number]): Promise<void> => {
    while (queue.length > 0) {
      let current: Unit | null = null;
      let fatal: string | null = null;
      const child: ResultPromise<{ ipc: true; reject: false; env: Record<string, string>; stderr: 'pipe' }> = execaNode(workerScript, [], {
        ipc: true,
        reject: false,
        stderr: 'pipe',
        env: { ...slot.env, QUEST_THREADS: process.env.QUEST_THREADS ?? threads },
      });
      child.sendMessage({ type: 'init', cfg: workerCfg } satisfies ToWorker).catch(() => undefined);
      const next = () => {
        current = queue.shift() ?? null;
        const msg: ToWorker = current ? { type: 'unit', unit: current, tokens: tokens.get(current.sample.id)! } : { type: 'done' };
        return child.sendMessage(msg).catch(() => undefined);
      };
      for await (const raw of child.getEachMessage()) {
        const msg = raw as FromWorker;
        if (msg.type === 'ready') await next();
        else if (msg.type === 'record') {
          onRecord(msg.record);
          await next();
        } else if (msg.type === 'error') fatal = msg.message;
        if (current === null && msg.type !== 'error') break;
      }
      const result = await child;
      if (fatal) throw new QuestError(fatal);
      if (current === null) return;
      const unit: Unit = current;
      const tries = (attempts.get(unit.key) ?? 0) + 1;
      attempts.set(unit.key, tries);
      const why = result.signal ?? `exit code ${result.exitCode}`;
      const said = String(result.stderr ?? '').trim().split('\n').pop();
      note(`${slot.name} died (${why}${said ? `: ${said}` : ''}) running ${unit.key}${tries < 2 ? '; retrying it once' : '; not retrying again'}`);
      if (tries < 2) queue.push(unit);
      else failures.push(unit.key);
    }
  };
  await Promise.all(slots.map(serve));
  if (failures.length) throw new QuestError(`${failures.length} unit(s) failed twice (${failures.join(', ')}); the records of the others are kept, rerun to retry`);
}
