/**
 * Stripe events for tests, built from the `stripe` SDK's types, and signed the way Stripe signs them
 * (`Stripe.webhooks.generateTestHeaderString`), then sent over real HTTP.
 */
import Stripe from 'stripe';
import { stripeEventEnvelope } from '../../src/stripe-api/stripe-event.js';

let counter = 0;
export const uid = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export function stripeEvent<T extends Stripe.Event>(
  type: T['type'],
  object: DeepPartial<T['data']['object']> & { id: string; object: string },
  options: { id?: string; created?: number; previous?: Record<string, unknown> } = {},
): T {
  return stripeEventEnvelope({
    id: options.id ?? uid('evt'),
    type,
    created: options.created ?? Math.floor(Date.now() / 1000),
    object,
    previous: options.previous,
  }) as T;
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

/** A `customer.subscription.*` snapshot with one item, the shape the billing core reads. */
export function subscriptionEvent(
  customer: string,
  options: {
    type?: 'created' | 'updated' | 'deleted' | 'paused' | 'resumed';
    status?: string;
    price?: string;
    created?: number;
    periodEnd?: number;
    items?: unknown;
  } = {},
): Stripe.Event {
  const item = {
    id: `si_${customer}`,
    quantity: 1,
    price: { id: options.price ?? 'price_pro', product: 'prod_1' },
  };
  return stripeEvent(
    `customer.subscription.${options.type ?? 'created'}` as 'customer.subscription.updated',
    {
      id: `sub_${customer}`,
      object: 'subscription',
      customer,
      status: (options.status ?? 'active') as Stripe.Subscription.Status,
      items: options.items ?? {
        object: 'list',
        data: [options.periodEnd ? { ...item, current_period_end: options.periodEnd } : item],
      },
    } as never,
    { created: options.created },
  );
}
