/**
 * The payloads this process appended lately, by log position. The live projector on the same instance
 * folds most events from their fold inputs, but where two events of one object share a second the causal
 * rank compares whole payloads, and it read them back from the log: at 16 senders in `bench:profile`, two
 * reads in three events, each a round trip and a parse of JSON that ingest had parsed moments before.
 * A payload in the log never changes, so a copy of it cannot go stale; only the first append of an id is
 * kept, which is the one the log stored. It keeps the body's text and parses it when asked: the parsed
 * objects, held past the request, would each be copied through the young generation by the garbage
 * collector, where a string is one copy (and most are never asked for). Bounded by the bodies' bytes,
 * oldest forgotten first; a forgotten payload, or one another instance appended, is read from the log.
 */
import type { EventPayload } from '../billing/events.js';

/** About 1,200 typical 3.4 KB events, a second or more of appends at the rates `bench:push` runs. */
export const RECENT_PAYLOADS_BYTES = 4 * 1024 * 1024;

export type PayloadAt = (position: number) => EventPayload | undefined;

export class RecentPayloads {
  private readonly bodies = new Map<number, string>();
  private bytes = 0;

  constructor(private readonly capacityBytes = RECENT_PAYLOADS_BYTES) {}

  /** `body` is the JSON the log stored at `position`. */
  remember(position: number, body: string): void {
    if (body.length > this.capacityBytes) return;
    this.bodies.set(position, body);
    this.bytes += body.length;
    // Positions are remembered in commit order, so the map's first entries are the oldest.
    for (const [oldest, forgotten] of this.bodies) {
      if (this.bytes <= this.capacityBytes) break;
      this.bodies.delete(oldest);
      this.bytes -= forgotten.length;
    }
  }

  readonly at: PayloadAt = (position) => {
    const body = this.bodies.get(position);
    return body === undefined ? undefined : (JSON.parse(body) as EventPayload);
  };

  get size(): number {
    return this.bodies.size;
  }
}
