/**
 * Limits that keep one MQTT client from wearing the broker down (issue 14): how many subscriptions one
 * connection may ask for, and how often one client id may connect, within a window. A browser asks for at
 * most four topics and reconnects with back-off, so the limits are far above what a real page does; what
 * exceeds them is disconnected. Written here because a fixed window per key is a few lines, and the
 * rate-limit libraries around are built for HTTP requests.
 */
export class FixedWindow {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** Counts one for `key`; false once `key` has gone past the limit in the current window. */
  allow(key: string, now = Date.now()): boolean {
    const window = this.windows.get(key);
    if (window && now - window.start < this.windowMs) return ++window.count <= this.limit;
    this.windows.set(key, { start: now, count: 1 });
    // Finished windows are forgotten, so the map holds only the keys seen within one window.
    if (this.windows.size > 1000) {
      for (const [other, { start }] of this.windows)
        if (now - start >= this.windowMs) this.windows.delete(other);
    }
    return true;
  }
}

/** Subscriptions one connection may request per window (a browser needs four). */
export const SUBSCRIPTIONS_PER_WINDOW = 40;
/** CONNECTs one client id may make per window (a reconnecting browser backs off). */
export const CONNECTS_PER_WINDOW = 20;
export const FLOOD_WINDOW_MS = 10_000;
