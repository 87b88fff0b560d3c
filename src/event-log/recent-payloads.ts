/**
 * The payloads this process appended lately, by log position. The live projector on the same instance
 * folds most events from their fold inputs, but where two events of one object share a second the causal
 * rank compares whole payloads, and it read them back from the log: at 16 senders in `bench:profile`, two
 * reads in three events, each a round trip and a parse of JSON that ingest had parsed moments before.
 * A payload in the log never changes, so a copy of it cannot go stale; only the first append of an id is
 * kept, which is the one the log stored. Bounded by the bodies' bytes, oldest forgotten first; a forgotten
 * payload, or one another instance appended, is read from the log as before.
 */
import type { EventPayload } from '../billing/events.js';

/** About 1,200 typical 3.4 KB events, a second or more of appends at the rates `bench:push` runs. */
export const RECENT_PAYLOADS_BYTES = 4 * 1024 * 1024;

export type PayloadAt = (position: number) => EventPayload | undefined;

export class RecentPayloads {
  private readonly entries = new Map<number, { payload: EventPayload; bytes: number }>();
  private bytes = 0;

  constructor(private readonly capacityBytes = RECENT_PAYLOADS_BYTES) {}

  remember(position: number, payload: EventPayload, bytes: number): void {
    if (bytes > this.capacityBytes) return;
    this.entries.set(position, { payload, bytes });
    this.bytes += bytes;
    // Positions are remembered in commit order, so the map's first entries are the oldest.
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.capacityBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  readonly at: PayloadAt = (position) => this.entries.get(position)?.payload;

  get size(): number {
    return this.entries.size;
  }
}
