/**
 * One eval run at a time writes into an output folder: a lock file there names the writer's
 * pid and host. A lock whose process is gone (killed, or the machine rebooted) is taken over.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QuestError, errorMessage } from '../errors.js';

export const LOCK_FILE = 'quest.lock';

interface Owner {
  pid: number;
  host: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock's owner, or null when there is no lock. */
function owner(file: string): Owner | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const o = JSON.parse(text) as Owner;
    if (Number.isInteger(o.pid) && typeof o.host === 'string') return o;
  } catch {
    // named below
  }
  throw new QuestError(`${file}: not a quest lock file; remove it if no quest run is writing into ${path.dirname(file)}`);
}

/**
 * Takes the lock of `dir`, or refuses naming the run that holds it; `note` says when a stale
 * lock is taken over. The lock goes when the process exits (also on SIGINT or SIGTERM,
 * which end it by process.exit) or when the returned function is called.
 */
export function lockOutput(dir: string, note: (message: string) => void): () => void {
  const file = path.join(dir, LOCK_FILE);
  const me: Owner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  // Written whole under another name, then linked: a reader never sees a half-written lock.
  const mine = `${file}.${process.pid}`;
  writeFileSync(mine, JSON.stringify(me) + '\n');
  try {
    for (;;) {
      try {
        linkSync(mine, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new QuestError(`--output-path ${dir}: cannot lock it (${errorMessage(err)})`);
      }
      const o = owner(file);
      if (o === null) continue;
      if (o.host !== me.host)
        throw new QuestError(`--output-path ${dir}: in use by pid ${o.pid} on ${o.host} since ${o.since}; if that run has ended, remove ${file}`);
      if (o.pid !== me.pid && alive(o.pid))
        throw new QuestError(`--output-path ${dir}: another quest run (pid ${o.pid}, since ${o.since}) is writing into it; wait for it to end or choose another folder`);
      // Moved aside before it goes: of two runs taking over the same stale lock only one moves
      // it; the other moves nothing, or the winner's new lock, which it puts back.
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue;
      }
      const moved = owner(aside);
      if (moved?.pid === o.pid && moved.since === o.since) note(`--output-path ${dir}: taking over the lock of pid ${o.pid}, which is no longer running`);
      else
        try {
          linkSync(aside, file);
        } catch {
          // A third run took the folder meanwhile: the loop meets its lock.
        }
      rmSync(aside, { force: true });
    }
  } finally {
    rmSync(mine, { force: true });
  }
  const release = () => {
    try {
      if (owner(file)?.pid === me.pid) rmSync(file, { force: true });
    } catch {
      // A lock file since replaced by something else is not ours to remove.
    }
  };
  process.on('exit', release);
  return () => {
    process.off('exit', release);
    release();
  };
}
