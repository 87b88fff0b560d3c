/** Waits until `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
export function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      if (predicate()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(check, 20);
    };
    check();
  });
}
