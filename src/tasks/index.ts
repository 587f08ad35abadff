import { QuestError } from '../errors.js';
import { passkey } from './passkey.js';
import { cwe } from './ruler/cwe.js';
import { fwe } from './ruler/fwe.js';
import { NIAH_TASKS } from './ruler/niah.js';
import { QA_TASKS } from './ruler/qa.js';
import { vt } from './ruler/vt.js';
import type { Task } from './types.js';

export type { Sample, SampleOptions, Task } from './types.js';

const ALL: Task[] = [passkey, ...NIAH_TASKS, vt, cwe, fwe, ...QA_TASKS];
export const TASKS: Record<string, Task> = Object.fromEntries(ALL.map((t) => [t.name, t]));

/** Names that stand for several tasks. RULER's QA tasks join "ruler" only with --qa-file. */
export function expandTasks(names: string[], hasQaFiles: boolean): string[] {
  const out = names.flatMap((n) => {
    if (n === 'ruler') return ALL.filter((t) => t.benchmark === 'ruler' && (hasQaFiles || !t.name.startsWith('qa_'))).map((t) => t.name);
    if (n === 'niah') return NIAH_TASKS.map((t) => t.name);
    return [n];
  });
  return [...new Set(out)];
}

export function task(name: string): Task {
  const t = TASKS[name];
  if (!t) throw new QuestError(`--tasks: unknown task "${name}" (known: ${Object.keys(TASKS).join(', ')}, and the groups ruler, niah)`);
  return t;
}
