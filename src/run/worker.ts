/** A pool worker (see pool.ts): prepares the run, loads the model once, runs the units it is sent. */
import { getEachMessage, sendMessage } from 'execa';
import { errorMessage } from '../errors.js';
import { prepareRun, runUnits, type PreparedRun } from './eval.js';
import type { FromWorker, ToWorker } from './pool.js';

let run: PreparedRun | null = null;
const send = (m: FromWorker) => sendMessage(m);

try {
  for await (const raw of getEachMessage()) {
    const msg = raw as ToWorker;
    if (msg.type === 'init') {
      run = prepareRun(msg.cfg);
      await send({ type: 'ready' });
    } else if (msg.type === 'unit') {
      const unit = run!.units.find((u) => u.key === msg.key);
      if (!unit) throw new Error(`unit ${msg.key} is not in this run`);
      await runUnits(run!, [unit], (record) => void send({ type: 'record', record }));
    } else break;
  }
} catch (err) {
  await send({ type: 'error', message: errorMessage(err) });
  process.exitCode = 1;
}
