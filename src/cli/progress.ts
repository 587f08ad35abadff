/** A progress bar on stderr that leaves stdout to the tables. */
import cliProgress from 'cli-progress';

export function bar(label: string) {
  const b = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {value}/{total} {detail}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total: number, done = 0) => b.start(total, done, { detail: '' }),
    increment: (detail: string) => b.increment(1, { detail }),
    stop: () => b.stop(),
  };
}
