/**
 * What the billing core reads: a Stripe event as it sits in the log, with the log position that breaks
 * ties. The core never sees NestJS, SQL or the network; it sees these plain records.
 */
export interface LoggedEvent {
  id: string;
  type: string;
  /** `event.created`, whole seconds since the epoch. */
  created: number;
  /** Position in the log: commit order, the last tie-breaker of the fold. */
  position: number;
  /** The verified event, or its fold input (fold-input.ts): the core reads only `data`. */
  payload: EventPayload;
  /** When the webhook was stored, milliseconds since the epoch (bookkeeping; the fold never reads it). */
  receivedAt?: number;
}

/** What the core reads of a payload. A full `Stripe.Event` is one. */
export interface EventPayload {
  data?: { object?: unknown; previous_attributes?: unknown };
}

export type Outcome = 'applied' | 'stale' | 'ignored' | 'unlinked' | 'failed';

/** A Stripe object as found in `data.object`, read defensively: API versions move fields around. */
export type StripeObject = Record<string, unknown> & { id?: string; object?: string };

export function dataObject(event: LoggedEvent): StripeObject {
  return (event.payload.data?.object ?? {}) as StripeObject;
}

export function previousAttributes(event: LoggedEvent): Record<string, unknown> | undefined {
  return event.payload.data?.previous_attributes as Record<string, unknown> | undefined;
}

/** An id field that may be expanded into an object (`"cus_…"` or `{ id: "cus_…", … }`). */
export function idOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string') {
    return (value as { id: string }).id;
  }
  return undefined;
}
