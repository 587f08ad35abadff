import { QuestError } from '../errors.js';
import { LONGBENCH_TASKS, longbenchAvailable } from './longbench/v1.js';
import { longbenchV2 } from './longbench/v2.js';
import { INFINITEBENCH_TASKS, infinitebenchAvailable } from './infinitebench.js';
import { MATH_TASKS } from './math.js';
import { passkey } from './passkey.js';
import { perplexity } from './perplexity.js';
import { cwe } from './ruler/cwe.js';
import { fwe } from './ruler/fwe.js';
import { NIAH_TASKS } from './ruler/niah.js';
import { QA_TASKS } from './ruler/qa.js';
import { vt } from './ruler/vt.js';
import type { Task } from './types.js';

export type { Sample, SampleOptions, Task } from './types.js';

const ALL: Task[] = [passkey, ...NIAH_TASKS, vt, cwe, fwe, ...QA_TASKS, ...LONGBENCH_TASKS, longbenchV2, perplexity, ...MATH_TASKS, ...INFINITEBENCH_TASKS];
export const TASKS: Record<string, Task> = Object.fromEntries(ALL.map((t) => [t.name, t]));

export interface TaskSources {
  qaFiles: string[];
  longbenchDir: string | null;
  longbenchE: boolean;
  infinitebenchDir?: string | null;
}

/**
 * Names that stand for several tasks. RULER's QA tasks join "ruler" only with --qa-file;
 * "longbench" is the LongBench datasets whose files are in --longbench-dir. What a group
 * leaves out is said on stderr (see skippedTasks).
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
    if (n === 'infinitebench') {
      if (!src.infinitebenchDir) throw new QuestError("--tasks infinitebench needs --infinitebench-dir, a folder of InfiniteBench's <task>.jsonl files");
      const found = infinitebenchAvailable(src.infinitebenchDir);
      if (!found.length) throw new QuestError(`--infinitebench-dir ${src.infinitebenchDir}: holds none of InfiniteBench's <task>.jsonl files`);
      return found;
    }
    return [n];
  });
  for (const line of skippedTasks(names, src)) process.stderr.write(`quest: ${line}\n`);
  return [...new Set(out)];
}

/** One line for each group of `names` that runs without some of its tasks, and why. */
export function skippedTasks(names: string[], src: TaskSources): string[] {
  const out: string[] = [];
  if (names.includes('ruler') && !src.qaFiles.length)
    out.push(`--tasks ruler: ${QA_TASKS.map((t) => t.name).join(', ')} skipped (RULER's QA tasks need --qa-file)`);
  if (names.includes('longbench') && src.longbenchDir) {
    const found = new Set(longbenchAvailable(src.longbenchDir, src.longbenchE));
    const missing = LONGBENCH_TASKS.map((t) => t.name).filter((n) => !found.has(n));
    if (found.size && missing.length)
      out.push(`--tasks longbench: ${missing.length} of ${LONGBENCH_TASKS.length} datasets skipped (no <dataset>${src.longbenchE ? '_e' : ''}.jsonl in --longbench-dir ${src.longbenchDir}): ${missing.join(', ')}`);
  }
  if (names.includes('infinitebench') && src.infinitebenchDir) {
    const found = new Set(infinitebenchAvailable(src.infinitebenchDir));
    const missing = INFINITEBENCH_TASKS.map((t) => t.name).filter((n) => !found.has(n));
    if (found.size && missing.length)
      out.push(`--tasks infinitebench: ${missing.length} of ${INFINITEBENCH_TASKS.length} tasks skipped (no <task>.jsonl in --infinitebench-dir ${src.infinitebenchDir}): ${missing.join(', ')}`);
  }
  return out;
}

/** The task of this name; `flag` is the flag that named it, for the error. */
export function task(name: string, flag = '--tasks'): Task {
  const t = TASKS[name];
  if (!t) throw new QuestError(`${flag}: unknown task "${name}" (known: ${Object.keys(TASKS).join(', ')}, and the groups ruler, niah, longbench, infinitebench)`);
  return t;
}
