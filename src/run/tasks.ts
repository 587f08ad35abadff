/** The tasks runner: a task's samples at one length, written as JSONL. */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { evalConfig } from '../config/index.js';
import { QuestError } from '../errors.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { task } from '../tasks/index.js';
import { taskSeed } from '../tasks/rng.js';
import type { SampleOptions } from '../tasks/types.js';

/** The user's data files a task may read, as SampleOptions names them. */
export type DataSources = Pick<
  SampleOptions,
  'haystackFile' | 'qaFiles' | 'longbenchDir' | 'longbenchE' | 'longbenchV2File' | 'longbenchFit' | 'infinitebenchDir' | 'mathFile' | 'aimeFile' | 'dataFile' | 'dataFields'
>;

export interface GenerateOptions {
  task: string;
  length: number;
  num: number;
  /** The JSONL file to write. */
  file: string;
  /** The model whose tokenizer measures the length (default: the shipped one). */
  model?: string;
  seed: number;
  depths?: number[];
  sources: DataSources;
}

/** Writes the samples, one JSON object a line with the prompt as `input`; returns how many and the task's name. */
export async function generateTasks(o: GenerateOptions): Promise<{ count: number; task: string }> {
  const cfg = evalConfig(undefined, { model: o.model, depths: o.depths });
  const t = task(o.task, '--task');
  const samples = t.samples({
    tokenizer: loadTokenizer(cfg.model),
    lengths: [o.length],
    depths: cfg.depths,
    seed: taskSeed(o.seed, t.name),
    perLength: o.num,
    ...o.sources,
  });
  const out = createWriteStream(o.file);
  const failed = once(out, 'error').then(([err]) => {
    throw new QuestError(`--output-path ${o.file}: ${(err as Error).message}`);
  });
  for (const s of samples) out.write(JSON.stringify({ ...s, input: s.context + s.question }) + '\n');
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return { count: samples.length, task: t.name };
}
