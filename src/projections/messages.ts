/**
 * The messages on the @nestjs/cqrs event bus. The projector says it committed a batch, with the batch's
 * feed rows (so this instance's change feed hands them on at once, without reading them back or waiting
 * for the database's notification); the change feed says whose state changed and which notable events
 * were applied, on whichever instance projected them. The realtime module listens.
 */
import type { BillingState } from '../billing/billing-state.js';
import type { NotableEvent } from '../billing/notable.js';
import type { FeedRow } from './projection-store.js';

export class CustomerStateChanged {
  constructor(public readonly state: BillingState) {}
}

export class NotableEventProjected {
  constructor(
    public readonly customerId: string,
    public readonly userId: string | null,
    public readonly event: NotableEvent,
  ) {}
}

export class ProjectionCommitted {
  constructor(
    public readonly head: number,
    /** The checkpoint the batch started from, and the replay generation it was projected in. */
    public readonly previous: number,
    public readonly generation: number,
    /** The batch's feed rows, as written to `billing_feed`. */
    public readonly rows: readonly FeedRow[],
  ) {}
}
