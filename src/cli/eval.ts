import path from 'node:path';
import type { Command } from 'commander';
import { evalConfig, evalDefaults } from '../config/index.js';
import { warnProvenance } from '../report/metadata.js';
import { CODE_SIM_BACKENDS } from '../metrics/fuzz.js';
import { TASKS } from '../tasks/index.js';
import { runEval } from '../run/eval.js';
import { evalColumns, markdown } from '../report/tables.js';
import { addPolicyFlags, atLeast, dataSources, deviceList, fieldMap, intList, nameList, nonNegativeInt, oneOf, percentList, policyFlags, positiveInt, probability, shardSpec, showDefaults, stopString } from './options.js';
import { onInterrupt, rerunCommand } from './interrupt.js';
import { bar } from './progress.js';

export function evalCommand(program: Command, argv: string[]): void {
  const cmd = program
    .command('eval')
    .description('accuracy of policies x budgets on long-context tasks (default: the shipped model on passkey)')
    .option('--model <dir>', 'Hugging Face model folder (config.json, safetensors, tokenizer.json)')
    .option('--tasks <names>', `comma-separated tasks: ${Object.keys(TASKS).join(', ')}; or the groups ruler, niah, longbench, infinitebench`, nameList('--tasks'))
    .option('--limit <n>', 'at most n samples per task', positiveInt('--limit'))
    .option('--seed <n>', 'seed of the task generators', nonNegativeInt('--seed'))
    .option('--output-path <dir>', 'where records and tables go; rerunning into it resumes (default: a new runs/<model>-<time>)')
    .option('--config <file>', 'YAML file of settings; flags override it')
    .option('--lengths <tokens>', 'prompt lengths in tokens, comma-separated', intList('--lengths'))
    .option('--length <tokens>', 'the same as --lengths', intList('--length'))
    .option('--depths <percents>', 'passkey needle depths in percent, comma-separated (0: a random depth, as Quest draws it)', percentList('--depths'))
    .option('--samples <n>', 'samples per task per length', positiveInt('--samples'))
    .option('--haystack-file <file>', "RULER's essay haystack: PaulGrahamEssays.json ({\"text\": ...}) or a text file")
    .option('--longbench-dir <dir>', "a folder of LongBench's <dataset>.jsonl files (fields input, context, answers, length, all_classes, _id)")
    .option('--longbench-e', 'use LongBench-E (<dataset>_e.jsonl) and report its 0-4k/4-8k/8k+ buckets')
    .option('--longbench-v2-file <file>', "LongBench v2's data.json")
    .option('--longbench-fit', "truncate LongBench prompts so that chat template and generation fit --lengths too (the originals truncate the prompt alone to its max length)")
    .option('--code-sim <backend>', "LongBench code_sim's fuzz.ratio: difflib (LongBench's install, the default) or levenshtein (python-Levenshtein's)", oneOf('--code-sim', CODE_SIM_BACKENDS))
    .option('--text-file <file>', 'the text perplexity reads (default: datasets/text/kjv-heldout.txt)')
    .option('--ppl-prefix <n>', 'perplexity: tokens prefilled dense before token-by-token feeding', positiveInt('--ppl-prefix'))
    .option('--qa-file <file>', 'RULER QA data in its original format (SQuAD v2 dev JSON for qa_1, HotpotQA dev JSON for qa_2); repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--question-mode <mode>', 'decode: feed the question token by token under the policy; prefill: with the context', oneOf('--question-mode', ['decode', 'prefill'] as const))
    .option('--question-tokens <n>', 'in decode mode, feed only the last n question tokens (the rest is prefilled)', positiveInt('--question-tokens'))
    .option('--device <name>', 'auto, cpu or cuda', oneOf('--device', ['auto', 'cpu', 'cuda'] as const))
    .option('--cells <mode>', "shared: one prefill per sample for all its policies and budgets, decoded as a batch; single: each alone, as before (same records)", oneOf('--cells', ['shared', 'single'] as const))
    .option('--workers <n>', 'worker processes, units dealt out as they free up (each on the backend --device picks; --devices puts one on each GPU)', positiveInt('--workers'))
    .option('--devices <ids>', 'GPUs to spread the run over, one worker each (e.g. 0,1,2,3)', deviceList('--devices'))
    .option('--shard <i/n>', 'run only the i-th of n deterministic slices (merge them with quest merge)', shardSpec('--shard'))
    .option('--infinitebench-dir <dir>', "a folder of InfiniteBench's <task>.jsonl files (longbook_sum_eng.jsonl, passkey.jsonl, ...)")
    .option('--math-file <file>', "MATH-500 as JSON Lines (fields problem, answer), for --tasks math500")
    .option('--aime-file <file>', 'AIME 2024 as JSON Lines (fields Problem, Answer or problem, answer), for --tasks aime24')
    .option('--data-file <file>', 'problems as JSON Lines, for --tasks math-data (fields named by --data-fields)')
    .option('--data-fields <map>', "--data-file's field names, problem=<field>,answer=<field>", fieldMap('--data-fields'))
    .option('--max-new-tokens <n>', 'long-generation tasks (math500, aime24, math-data): tokens generated at most (default: 32768)', positiveInt('--max-new-tokens'))
    .option('--temperature <t>', 'long-generation tasks: sampling temperature, 0 for greedy', atLeast('--temperature', 0))
    .option('--top-p <p>', 'long-generation tasks: nucleus sampling mass in (0, 1]', probability('--top-p'))
    .option('--top-k <k>', 'long-generation tasks: sample from the k most likely tokens (0: all)', nonNegativeInt('--top-k'))
    .option('--num-samples <n>', 'long-generation tasks: draws per problem (their mean score is pass@1)', positiveInt('--num-samples'))
    .option('--stop <string>', 'long-generation tasks: a stop string, JSON escapes allowed (\\n); repeatable', stopString('--stop'))
    .option('--diagnostics', "at each decode step, governed layer and KV head: the policy's attention output against dense attention (relative L2 error) and the dense attention mass it read (recall); CPU only, a dense pass per step, not timed");
  showDefaults(addPolicyFlags(cmd, true), evalDefaults()).action(async (o) => {
      const cfg = evalConfig(o.config, {
        model: o.model,
        tasks: o.tasks,
        limit: o.limit,
        seed: o.seed,
        outputPath: o.outputPath,
        lengths: o.lengths ?? o.length,
        depths: o.depths,
        samples: o.samples,
        ...dataSources(o),
        codeSim: o.codeSim,
        textFile: o.textFile,
        pplPrefix: o.pplPrefix,
        ...policyFlags(o),
        questionMode: o.questionMode,
        questionTokens: o.questionTokens,
        device: o.device,
        cells: o.cells,
        workers: o.workers,
        devices: o.devices,
        shard: o.shard,
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        topP: o.topP,
        topK: o.topK,
        numSamples: o.numSamples,
        stop: o.stop,
        diagnostics: o.diagnostics,
      });
      const b = bar('eval');
      let out: { dir: string; total: number; done: number } | null = null;
      const undo = onInterrupt((signal) => {
        b.stop();
        if (!out) return void process.stderr.write(`quest: ${signal}: stopped before the run began\n`);
        const file = path.join(out.dir, 'samples.jsonl');
        process.stderr.write(`quest: ${signal}: stopped with ${out.done} of ${out.total} records in ${file}; to go on from there:\n  ${rerunCommand(argv, out.dir)}\n`);
      });
      const result = await runEval(cfg, argv, {
        start: (total, done, dir) => {
          out = { dir, total, done };
          b.start(total, done);
        },
        unit: (r) => {
          out!.done++;
          b.increment(`${r.sampleId} ${r.policy}${r.budget ? `@${r.budget}` : ''} -> ${r.score === null ? 'skipped' : r.score ? 'ok' : 'miss'}`);
        },
        note: b.note,
        stop: b.stop,
      });
      undo();
      const m = result.metadata;
      process.stdout.write(`\nmodel ${path.basename(cfg.model)} | backend ${m.backend} (${m.backendReason}) | ${m.device}\n\n`);
      process.stdout.write(markdown(result.rows, evalColumns(result.rows)));
      process.stdout.write(`\nrecords and tables: ${result.outputDir}\n`);
      warnProvenance(m, path.join(result.outputDir, 'results.json'));
    });
}
