/**
 * Progress for long work: a bar with ETA on a terminal, a plain line every few seconds
 * otherwise (logs and CI). Written to stderr so results on stdout stay clean.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export function progress(label: string, total: number, opts: { quiet?: boolean } = {}): Progress {
  if (opts.quiet || total <= 0) return { tick() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { tick: (n = 1) => bar.increment(n), stop: () => bar.stop() };
  }
  const t0 = Date.now();
  let done = 0;
  let last = 0;
  return {
    tick(n = 1) {
      done += n;
      const now = Date.now();
      if (now - last > 5000 || done === total) {
        last = now;
        const eta = done ? (((now - t0) / done) * (total - done)) / 1000 : 0;
        process.stderr.write(
          `${label}: ${done}/${total} (${Math.round((100 * done) / total)}%), ETA ${eta.toFixed(0)} s\n`,
        );
      }
    },
    stop() {},
  };
}
