/**
 * Progress on stderr, leaving stdout to the tables: a bar on a terminal; elsewhere (CI, nohup)
 * a line every 10 s and one when all is done. Both say done/total, the time taken and what is left.
 */
import cliProgress from 'cli-progress';

const LINE_EVERY_MS = 10_000;

/** 1h02m, 3m05s or 12s. */
export function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  return `${s}s`;
}

export interface Progress {
  /** `done` of `total` were finished before (a resumed run): the estimate counts only this run's pace. */
  start(total: number, done?: number): void;
  increment(detail: string): void;
  /** A line of its own for the user (a worker that died, a cut), the bar going on below it. */
  note(message: string): void;
  /** Ends the bar and gives the terminal back its cursor and line wrap; again is a no-op. */
  stop(): void;
}

export function bar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  let total = 0;
  let done = 0;
  let before = 0;
  let began = 0;
  const status = () => {
    const elapsed = Date.now() - began;
    const ran = done - before;
    const eta = ran > 0 ? ((total - done) * elapsed) / ran : null;
    return `${done}/${total} | ${clock(elapsed)} elapsed | eta ${eta === null ? '-' : clock(eta)}`;
  };
  const begin = (t: number, d: number) => {
    total = t;
    done = before = d;
    began = Date.now();
  };
  const say = (message: string) => stream.write(`quest: ${message}\n`);
  if (stream.isTTY) {
    const b = new cliProgress.SingleBar({
      format: (options, params, payload: { detail: string }) =>
        `${label} |${cliProgress.Format.BarFormat(params.progress, options)}| ${status()} ${payload.detail}`.slice(0, params.maxWidth),
      stream,
      hideCursor: true,
      clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    return {
      start: (t, d = 0) => {
        begin(t, d);
        b.start(t, d, { detail: '' });
      },
      increment: (detail) => {
        done++;
        b.increment(1, { detail });
      },
      // Clears the bar's line; the bar draws itself again below within a second.
      note: (message) => {
        stream.write('\r\x1b[K');
        say(message);
      },
      stop: () => b.stop(),
    };
  }
  let timer: NodeJS.Timeout | null = null;
  const line = () => stream.write(`${label} ${status()}\n`);
  return {
    start: (t, d = 0) => {
      begin(t, d);
      timer = setInterval(line, LINE_EVERY_MS).unref();
    },
    increment: () => void done++,
    note: say,
    stop: () => {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      // A run that ends short (an error, Ctrl-C) says so in its own words.
      if (done === total) line();
    },
  };
}
