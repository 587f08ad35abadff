/** Ctrl-C (SIGINT) and SIGTERM end a command cleanly, saying what was kept and how to go on. */
import os from 'node:os';
import path from 'node:path';

/** On SIGINT or SIGTERM, `last` runs (stop the bar, say where the output is), then exit 128 + the signal number. Returns the undo. */
export function onInterrupt(last: (signal: NodeJS.Signals) => void): () => void {
  const handler = (signal: NodeJS.Signals) => {
    last(signal);
    // Exit handlers (the output folder's lock) run; execa ends the worker processes.
    process.exit(128 + os.constants.signals[signal]);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The command line that was run (process.argv), into `dir` by an explicit --output-path. */
export function rerunCommand(argv: string[], dir: string): string {
  const args: string[] = [];
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--output-path') i++;
    else if (!argv[i].startsWith('--output-path=')) args.push(argv[i]);
  }
  const script = path.relative(process.cwd(), argv[1]);
  const bin = script.startsWith('..') || path.isAbsolute(script) ? argv[1] : script;
  return ['node', bin, ...args, '--output-path', dir].map(shellWord).join(' ');
}
