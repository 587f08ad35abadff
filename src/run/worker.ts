/**
 * A pool worker (see pool.ts): opens the model folder and tokenizer, loads the model at its
 * first unit and keeps it, and runs the units it is sent with their tokens.
 */
import { getEachMessage, sendMessage } from 'execa';
import { errorMessage } from '../errors.js';
import { openRun, runUnits, type PreparedRun } from './eval.js';
import type { FromWorker, ToWorker } from './pool.js';

let run: PreparedRun | null = null;
const send = (m: FromWorker) => sendMessage(m);

try {
  for await (const raw of getEachMessage()) {
    const msg = raw as ToWorker;
    if (msg.type === 'init') {
      run = openRun(msg.cfg);
      await send({ type: 'ready' });
    } else if (msg.type === 'unit') {
      run!.tokens.set(msg.unit.sample.id, msg.tokens);
      await runUnits(run!, [msg.unit], (record) => void send({ type: 'record', record }));
      run!.tokens.delete(msg.unit.sample.id);
    } else break;
  }
} catch (err) {
  await send({ type: 'error', message: errorMessage(err) });
  process.exitCode = 1;
}
