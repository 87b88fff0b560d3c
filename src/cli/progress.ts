/**
 * A one-line progress bar for the terminal (and a line every few seconds when stdout is not a terminal,
 * so CI logs stay readable). Twenty lines of code do not justify a dependency.
 */
export function progressLine(done: number, total: number, width = 30): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${total} events`;
}

export function progressReporter(
  stream: NodeJS.WriteStream = process.stdout,
): (done: number, total: number) => void {
  let lastPrinted = 0;
  return (done, total) => {
    if (stream.isTTY) {
      stream.write(`\r${progressLine(done, total)}`);
      if (done >= total) stream.write('\n');
      return;
    }
    const now = Date.now();
    if (done >= total || now - lastPrinted > 2000) {
      lastPrinted = now;
      stream.write(`${progressLine(done, total)}\n`);
    }
  };
}
