import { QuestError } from '../errors.js';
import { LONGBENCH_TASKS, longbenchAvailable } from './longbench/v1.js';
import { longbenchV2 } from './longbench/v2.js';
import { passkey } from './passkey.js';
import { perplexity } from './perplexity.js';
import { cwe } from './ruler/cwe.js';
import { fwe } from './ruler/fwe.js';
import { NIAH_TASKS } from './ruler/niah.js';
import { QA_TASKS } from './ruler/qa.js';
import { vt } from './ruler/vt.js';
import type { Task } from './types.js';

export type { Sample, SampleOptions, Task } from './types.js';

const ALL: Task[] = [passkey, ...NIAH_TASKS, vt, cwe, fwe, ...QA_TASKS, ...LONGBENCH_TASKS, longbenchV2, perplexity];
export const TASKS: Record<string, Task> = Object.fromEntries(ALL.map((t) => [t.name, t]));

export interface TaskSources {
  qaFiles: string[];
  longbenchDir: string | null;
  longbenchE: boolean;
}

/**
 * Names that stand for several tasks. RULER's QA tasks join "ruler" only with --qa-file;
 * "longbench" is the LongBench datasets whose files are in --longbench-dir.
 */
export function expandTasks(names: string[], src: TaskSources): string[] {
  const out = names.flatMap((n) => {
    if (n === 'ruler') return ALL.filter((t) => t.benchmark === 'ruler' && (src.qaFiles.length > 0 || !t.name.startsWith('qa_'))).map((t) => t.name);
    if (n === 'niah') return NIAH_TASKS.map((t) => t.name);
    if (n === 'longbench') {
      if (!src.longbenchDir) throw new QuestError('--tasks longbench needs --longbench-dir, a folder of LongBench\'s <dataset>.jsonl files');
      const found = longbenchAvailable(src.longbenchDir, src.longbenchE);
      if (!found.length) throw new QuestError(`--longbench-dir ${src.longbenchDir}: holds none of LongBench's <dataset>${src.longbenchE ? '_e' : ''}.jsonl files`);
      return found;
    }
    return [n];
  });
  return [...new Set(out)];
}

/** The task of this name; `flag` is the flag that named it, for the error. */
export function task(name: string, flag = '--tasks'): Task {
  const t = TASKS[name];
  if (!t) throw new QuestError(`${flag}: unknown task "${name}" (known: ${Object.keys(TASKS).join(', ')}, and the groups ruler, niah, longbench)`);
  return t;
}
