/**
 * The envelope of a Stripe event (`object: "event"`, the API version, `data.object` and optional
 * `data.previous_attributes`), as Stripe sends it to a webhook endpoint. The simulator, the tests and the
 * benchmarks all build their events with it, so there is one place that says what an event looks like.
 */
import type Stripe from 'stripe';

/** The API version Paywire's simulated and test events claim (Stripe's current one when written). */
export const SIMULATED_API_VERSION = '2026-07-29.dahlia';

export function stripeEventEnvelope(event: {
  id: string;
  type: string;
  created: number;
  object: object;
  previous?: Record<string, unknown>;
  request?: { id: string | null; idempotency_key: string | null };
}): Stripe.Event {
  return {
    id: event.id,
    object: 'event',
    api_version: SIMULATED_API_VERSION,
    created: event.created,
    livemode: false,
    pending_webhooks: 1,
    request: event.request ?? { id: null, idempotency_key: null },
    type: event.type,
    data: { object: event.object, ...(event.previous ? { previous_attributes: event.previous } : {}) },
  } as unknown as Stripe.Event;
}
