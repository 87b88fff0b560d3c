/**
 * Drops a subscriber whose socket has stopped taking bytes, judged against the broker's own progress so
 * that a pause of the broker itself cannot drop healthy subscribers.
 *
 * Why not Aedes' `drainTimeout` alone: its timer runs on the wall clock, and after the process has stalled
 * longer than the timeout (a long GC, a starved CPU) Node runs the due timers before it reads the sockets'
 * `drain` events. Every subscriber that had bytes waiting at that moment was dropped, healthy ones
 * included, and lost the notable events in flight (test/realtime.spec.ts stalls the loop 1.5 s to show it).
 * Here a subscriber is dropped once `strikes` consecutive checks, each on time, found its socket waiting
 * for a drain that never came; a late check means the broker was the one that stood still, and the count
 * starts again. Aedes' `drainTimeout` stays as a far backstop: its close path is what fails the deliveries
 * still waiting on a dropped socket, so it must stay enabled.
 */
import type { Client } from 'aedes';

interface Watched {
  strikes: number;
  drained: boolean;
}

export class SlowSubscriberGuard {
  private readonly watched = new Map<Client, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private lastCheck: number;

  constructor(
    private readonly intervalMs: number,
    private readonly strikes: number,
    private readonly drop: (client: Client) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastCheck = now();
  }

  /** How many clients are watched: every connected one, none whose connection has closed. */
  get watching(): number {
    return this.watched.size;
  }

  /** Watches a connected client until its connection closes. */
  watch(client: Client): void {
    const watched: Watched = { strikes: 0, drained: false };
    this.watched.set(client, watched);
    client.conn.on('drain', () => (watched.drained = true));
    client.conn.once('close', () => this.watched.delete(client));
  }

  start(): void {
    this.lastCheck = this.now();
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.watched.clear();
  }

  check(): void {
    const now = this.now();
    const late = now - this.lastCheck > this.intervalMs * 1.5;
    this.lastCheck = now;
    for (const [client, watched] of this.watched) {
      const stuck = client.conn.writableNeedDrain && !watched.drained;
      watched.drained = false;
      if (late || !stuck) {
        watched.strikes = 0;
      } else if (++watched.strikes >= this.strikes) {
        this.watched.delete(client);
        this.drop(client);
      }
    }
  }
}
