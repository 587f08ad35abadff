import { QuestError } from '../errors.js';
import { passkey } from './passkey.js';
import type { Task } from './types.js';

export type { Sample, SampleOptions, Task } from './types.js';

export const TASKS: Record<string, Task> = { passkey };

export function task(name: string): Task {
  const t = TASKS[name];
  if (!t) throw new QuestError(`--tasks: unknown task "${name}" (known: ${Object.keys(TASKS).join(', ')})`);
  return t;
}
