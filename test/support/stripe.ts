/**
 * Stripe events for tests, built from the `stripe` SDK's types, and signed the way Stripe signs them
 * (`Stripe.webhooks.generateTestHeaderString`), then sent over real HTTP.
 */
import Stripe from 'stripe';

let counter = 0;
export const uid = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export function stripeEvent<T extends Stripe.Event>(
  type: T['type'],
  object: DeepPartial<T['data']['object']> & { id: string; object: string },
  options: { id?: string; created?: number; previous?: Record<string, unknown> } = {},
): T {
  return {
    id: options.id ?? uid('evt'),
    object: 'event',
    api_version: '2026-07-29.dahlia',
    created: options.created ?? Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object, ...(options.previous ? { previous_attributes: options.previous } : {}) },
  } as unknown as T;
}

export function sign(body: string, secret: string, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
}

export async function postWebhook(
  baseUrl: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export function sendEvent(baseUrl: string, event: Stripe.Event, secret: string) {
  const body = JSON.stringify(event);
  return postWebhook(baseUrl, body, { 'stripe-signature': sign(body, secret) });
}
