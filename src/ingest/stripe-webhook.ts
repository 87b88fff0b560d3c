/**
 * Verifying a Stripe webhook (SPEC section 2). The signature is checked by the Stripe SDK on the raw
 * request bytes against every configured secret (several during a secret rotation), then the verified
 * JSON is checked to be a Stripe event object before anything is stored. The errors carry no detail on
 * purpose: the sender learns which rule failed, never why in terms of secrets or internals.
 */
import Stripe from 'stripe';
import { foldInput } from '../billing/fold-input.js';
import { routeEvent } from '../billing/routing.js';
import type { EventSource } from '../billing/event-types.js';
import type { EventToAppend } from '../event-log/event-log.js';

export class WebhookRejected extends Error {
  constructor(readonly code: 'invalid_signature' | 'invalid_payload') {
    super(code);
  }
}

export interface VerifyOptions {
  secrets: string[];
  toleranceSeconds: number;
}

/** Verifies the signature and shape; returns the row to append, or throws WebhookRejected. */
export function verifyStripeWebhook(
  body: Buffer,
  signature: string | undefined,
  options: VerifyOptions,
): EventToAppend {
  if (!signature || body.length === 0) throw new WebhookRejected('invalid_signature');
  let event: Stripe.Event | undefined;
  for (const secret of options.secrets) {
    try {
      event = Stripe.webhooks.constructEvent(body, signature, secret, options.toleranceSeconds);
      break;
    } catch (error) {
      // A signature error means "not this secret" (during a rotation only one matches), so try the next.
      // Anything else was thrown after the signature verified: the body is not a snapshot event's JSON.
      if ((error as { type?: unknown }).type !== 'StripeSignatureVerificationError') {
        throw new WebhookRejected('invalid_payload');
      }
    }
  }
  if (!event) throw new WebhookRejected('invalid_signature');
  return eventToAppend(event, body.toString('utf8'));
}

/**
 * Ids Paywire gives the snapshot events reconcile appends (SPEC section 8). Stripe's event ids start with
 * `evt_`, so no id of this form can ever collide with one of Stripe's.
 */
export const SNAPSHOT_ID = /^pwsnap_[A-Za-z0-9_]{1,250}$/;
const STRIPE_EVENT_ID = /^evt_[A-Za-z0-9_]{1,250}$/;

/**
 * The log row of an event: verified by signature (webhook), fetched from Stripe's API (api), or made from
 * a fetched object (reconcile). `body` is the exact JSON it came as.
 */
export function eventToAppend(value: unknown, body: string, source: EventSource = 'webhook'): EventToAppend {
  if (!isStripeEvent(value, source === 'reconcile' ? SNAPSHOT_ID : STRIPE_EVENT_ID)) {
    throw new WebhookRejected('invalid_payload');
  }
  const routing = routeEvent(value);
  return {
    id: value.id,
    type: value.type,
    created: value.created,
    livemode: value.livemode === true,
    apiVersion: typeof value.api_version === 'string' ? value.api_version : null,
    account: typeof value.account === 'string' ? value.account : null,
    customerId: routing.customerId,
    objectId: routing.objectId,
    // One of the two is always empty: links for an event that names its customer, references otherwise.
    refs: [...routing.links, ...routing.references],
    body,
    foldInput: JSON.stringify(foldInput(value)),
    source,
  };
}

type EventShape = Pick<
  Stripe.Event,
  'id' | 'type' | 'created' | 'livemode' | 'api_version' | 'account' | 'data'
>;

function isStripeEvent(value: unknown, idPattern: RegExp): value is EventShape {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const event = value as Record<string, unknown>;
  const data = event.data as Record<string, unknown> | undefined;
  return (
    event.object === 'event' &&
    typeof event.id === 'string' &&
    idPattern.test(event.id) &&
    typeof event.type === 'string' &&
    /^[a-z0-9_.]{1,200}$/.test(event.type) &&
    Number.isSafeInteger(event.created) &&
    (event.created as number) > 0 &&
    !!data &&
    typeof data === 'object' &&
    !!data.object &&
    typeof data.object === 'object'
  );
}
