/**
 * The messages on the @nestjs/cqrs event bus: the projector says whose state changed (after its
 * transaction committed) and which notable events it applied, the replay says it swapped in rebuilt
 * tables. The realtime module listens.
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

export class ProjectionsRebuilt {
  constructor(public readonly head: number) {}
}
