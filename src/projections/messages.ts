/**
 * The messages on the @nestjs/cqrs event bus. The projector says it committed a batch (so this instance's
 * change feed looks at once, without waiting for the database's notification); the change feed says whose
 * state changed and which notable events were applied, on whichever instance projected them. The
 * realtime module listens.
 */
import type { BillingState } from '../billing/billing-state.js';
import type { NotableEvent } from '../billing/notable.js';

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
  constructor(public readonly head: number) {}
}
