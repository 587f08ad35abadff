/** quest's command line: one file per command, each parsing flags and calling a runner. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { projectRoot } from '../config/index.js';
import { QuestError } from '../errors.js';
import { benchAttentionCommand } from './bench-attention.js';
import { benchLinearCommand } from './bench-linear.js';
import { benchLatencyCommand } from './bench-latency.js';
import { benchEvalCommand } from './bench-eval.js';
import { checkCommand } from './check.js';
import { envCommand } from './env.js';
import { mergeCommand } from './merge.js';
import { modelsCommand } from './models.js';
import { resultsCommand } from './results.js';
import { evalCommand } from './eval.js';
import { tasksCommand } from './tasks.js';

export async function main(argv: string[]): Promise<number> {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  const program = new Command('quest')
    .description('KV-cache sparsity for long-context LLM inference: accuracy and latency through one engine')
    .version(pkg.version)
    .exitOverride()
    .showHelpAfterError();
  evalCommand(program, argv);
  benchLatencyCommand(program, argv);
  benchEvalCommand(program, argv);
  benchAttentionCommand(program, argv);
  benchLinearCommand(program, argv);
  envCommand(program);
  tasksCommand(program);
  mergeCommand(program);
  modelsCommand(program);
  checkCommand(program);
  resultsCommand(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof QuestError) {
      process.stderr.write(`quest: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
