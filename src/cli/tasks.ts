import { Option, type Command } from 'commander';
import { QuestError } from '../errors.js';
import { markdown } from '../report/tables.js';
import { generateTasks } from '../run/tasks.js';
import { TASKS } from '../tasks/index.js';
import { dataSources, fieldMap, nonNegativeInt, percentList, positiveInt } from './options.js';

export function tasksCommand(program: Command): void {
  const tasks = program.command('tasks').description('list the tasks, or generate a task set to a JSONL file');
  tasks
    .command('list')
    .description('every task: its benchmark, source, metric and tokens generated')
    .action(() => {
      const rows = Object.values(TASKS);
      process.stdout.write(
        markdown(rows, [
          { title: 'task', value: (t) => t.name },
          { title: 'benchmark', value: (t) => t.benchmark },
          { title: 'metric', value: (t) => t.metric },
          { title: 'max new tokens', value: (t) => String(t.maxNewTokens) },
          { title: 'source', value: (t) => t.source },
        ]),
      );
    });
  tasks
    .command('generate')
    .description("generate samples at a length in the model's own tokens, one JSON object per line")
    .requiredOption('--task <name>', 'a task name (see quest tasks list)')
    .requiredOption('--length <tokens>', 'target prompt length in tokens', positiveInt('--length'))
    .option('-n, --num <n>', 'how many samples', positiveInt('-n'), 10)
    .option('--output-path <file>', 'the JSONL file to write')
    // The earlier name, kept working.
    .addOption(new Option('--out <file>').hideHelp())
    .option('--model <dir>', 'the model folder whose tokenizer measures the length')
    .option('--seed <n>', 'seed (the same seed gives the same set)', nonNegativeInt('--seed'), 0)
    .option('--depths <percents>', 'passkey needle depths, cycled', percentList('--depths'))
    .option('--haystack-file <file>', "RULER's essay haystack")
    .option('--qa-file <file>', 'RULER QA data; repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--longbench-dir <dir>', "a folder of LongBench's <dataset>.jsonl files")
    .option('--longbench-e', 'LongBench-E files (<dataset>_e.jsonl)')
    .option('--longbench-v2-file <file>', "LongBench v2's data.json")
    .option('--longbench-fit', 'truncate LongBench prompts so that chat template and generation fit --length too')
    .option('--infinitebench-dir <dir>', "a folder of InfiniteBench's <task>.jsonl files")
    .option('--math-file <file>', 'MATH-500 as JSON Lines (fields problem, answer), for --task math500')
    .option('--aime-file <file>', 'AIME 2024 as JSON Lines (fields Problem, Answer or problem, answer), for --task aime24')
    .option('--data-file <file>', 'problems as JSON Lines, for --task math-data (fields named by --data-fields)')
    .option('--data-fields <map>', "--data-file's field names, problem=<field>,answer=<field>", fieldMap('--data-fields'))
    .action(async (o) => {
      const file: string | undefined = o.outputPath ?? o.out;
      if (file === undefined) throw new QuestError('--output-path: required, the JSONL file to write');
      if (file.trim() === '') throw new QuestError('--output-path: empty; name the JSONL file to write');
      const { count, task } = await generateTasks({
        task: o.task,
        length: o.length,
        num: o.num,
        file,
        model: o.model,
        seed: o.seed,
        depths: o.depths,
        sources: dataSources(o),
      });
      process.stderr.write(`wrote ${count} ${task} samples at ${o.length} tokens to ${file}\n`);
    });
}
