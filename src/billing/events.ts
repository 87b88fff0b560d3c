/**
 * What the billing core reads: a Stripe event as it sits in the log, with the log position that breaks
 * ties. The core never sees NestJS, SQL or the network; it sees these plain records.
 */
import type Stripe from 'stripe';

export interface LoggedEvent {
  id: string;
  type: string;
  /** `event.created`, whole seconds since the epoch. */
  created: number;
  /** Position in the log: commit order, the last tie-breaker of the fold. */
  position: number;
  payload: Stripe.Event;
  /** When the webhook was stored, milliseconds since the epoch (bookkeeping; the fold never reads it). */
  receivedAt?: number;
}

export type Outcome = 'applied' | 'stale' | 'ignored' | 'unlinked' | 'failed';

/** A Stripe object as found in `data.object`, read defensively: API versions move fields around. */
export type StripeObject = Record<string, unknown> & { id?: string; object?: string };

export function dataObject(event: LoggedEvent): StripeObject {
  return (event.payload.data?.object ?? {}) as unknown as StripeObject;
}

export function previousAttributes(event: LoggedEvent): Record<string, unknown> | undefined {
  const data = event.payload.data as { previous_attributes?: Record<string, unknown> } | undefined;
  return data?.previous_attributes;
}

/** An id field that may be expanded into an object (`"cus_…"` or `{ id: "cus_…", … }`). */
export function idOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string') {
    return (value as { id: string }).id;
  }
  return undefined;
}
