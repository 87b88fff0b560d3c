/**
 * The messages on the @nestjs/cqrs event bus. The projector says it committed a batch, with the feed rows
 * it wrote (so this instance's change feed pushes them at once, without waiting for the database's
 * notification or reading them back); the change feed says whose state changed and which notable events
 * were applied, on whichever instance projected them. The realtime module listens.
 */
import type { BillingState } from '../billing/billing-state.js';
import type { NotableEvent } from '../billing/notable.js';
import type { FeedEntry } from './project-batch.js';

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
    /** The checkpoint the batch moved from… */
    public readonly after: number,
    /** …and to: the `batch` key of its feed rows. */
    public readonly head: number,
    /** Its `billing_feed` rows, in `seq` order. */
    public readonly feed: readonly FeedEntry[],
  ) {}
}
