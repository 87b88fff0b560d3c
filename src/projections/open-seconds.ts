/**
 * The open second of each customer the live projector folded lately (`OpenSecond` in the billing core),
 * kept between its batches: an event that shares a second with what a customer's state already reflects
 * then folds without reading the customer's history back from the log (at 16 senders those reads were
 * half a read per event, BENCHMARKS.md). The entries describe the live tables as this process's last batch
 * left them, so they serve only while the checkpoint row is still the version that batch wrote (its
 * `xmin`, the batch's transaction): another instance's batch or a replay's swap writes that row too, and
 * then every entry is dropped. A batch also uses an entry only for a stored state of the version it folds
 * to. The least recently folded customers are forgotten first, past `capacity`; a forgotten customer's
 * next same-second event reads the log, as every one did before.
 */
import type { CommittedBatch, KnownSecond } from './project-batch.js';

export const OPEN_SECONDS_CAPACITY = 10_000;

export class OpenSeconds {
  private readonly entries = new Map<string, KnownSecond>();
  private writtenBy: string | null = null;

  constructor(private readonly capacity = OPEN_SECONDS_CAPACITY) {}

  /** What a batch may use, given the checkpoint row's `xmin` it locked: nothing unless this process wrote it. */
  validFor(checkpointXmin: string | null): ReadonlyMap<string, KnownSecond> {
    if (checkpointXmin === null || checkpointXmin !== this.writtenBy) {
      this.entries.clear();
      this.writtenBy = null;
    }
    return this.entries;
  }

  /** Takes in what a committed batch knows; a batch that failed changed nothing, and is not remembered. */
  remember(batch: Pick<CommittedBatch, 'openSeconds' | 'checkpointXmin'>): void {
    for (const [id, known] of batch.openSeconds) {
      this.entries.delete(id);
      if (known) this.entries.set(id, known);
    }
    for (const id of this.entries.keys()) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(id);
    }
    this.writtenBy = batch.checkpointXmin;
  }

  get size(): number {
    return this.entries.size;
  }
}
