/**
 * The progress bar of long commands (`replay`), from cli-progress: redrawn in place on a terminal, and
 * one line every two seconds when stdout is not a terminal, so CI logs stay readable.
 */
import { Presets, SingleBar } from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(unit: string, stream: NodeJS.WriteStream = process.stdout): Progress {
  const bar = new SingleBar(
    {
      format: `[{bar}] {percentage}% {value}/{total} ${unit}`,
      barsize: 30,
      stream,
      noTTYOutput: true,
      notTTYSchedule: 2000,
      hideCursor: true,
    },
    Presets.legacy,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop: () => bar.stop(),
  };
}
