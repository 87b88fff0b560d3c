/**
 * Realistic Stripe event sequences for `paywire simulate`, the way `stripe trigger` would produce them but
 * offline: each scenario is a list of events for one customer, with `created` seconds in causal order and
 * snapshots whose `previous_attributes` chain the way Stripe's do. Products carry `metadata.features`, so
 * subscriptions grant features without a catalog file; one-time purchases use the plan `lifetime`
 * (`plans.lifetime` in `CATALOG_FILE`, see examples/catalog.yaml).
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { stripeEventEnvelope } from '../stripe-api/stripe-event.js';

export const SCENARIOS = ['lifecycle', 'purchase', 'dispute', 'dunning', 'many'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const SIM_PRODUCTS = {
  pro: { product: 'prod_paywire_sim_pro', price: 'price_paywire_sim_pro', features: 'pro' },
  team: { product: 'prod_paywire_sim_team', price: 'price_paywire_sim_team', features: 'pro,team' },
};

const id = (prefix: string) => `${prefix}_sim${randomBytes(8).toString('hex')}`;

class Timeline {
  readonly events: Stripe.Event[] = [];
  constructor(private at: number) {}

  /** Adds an event `gap` seconds after the previous one (0: the same second, as Stripe often does). */
  add(type: string, object: Record<string, unknown>, gap = 1, previous?: Record<string, unknown>): void {
    this.at += gap;
    this.events.push(
      stripeEventEnvelope({
        id: id('evt'),
        type,
        created: this.at,
        object,
        previous,
        request: { id: id('req'), idempotency_key: null },
      }),
    );
  }

  get now(): number {
    return this.at;
  }
}

function productEvents(timeline: Timeline): void {
  for (const { product, features } of Object.values(SIM_PRODUCTS)) {
    timeline.add(
      'product.updated',
      { id: product, object: 'product', active: true, metadata: { features } },
      0,
    );
  }
}

function customer(timeline: Timeline, customerId: string, userId: string): void {
  timeline.add('customer.created', {
    id: customerId,
    object: 'customer',
    email: `${userId}@example.com`,
    metadata: { userId },
  });
}

function subscriptionSnapshot(
  subscriptionId: string,
  customerId: string,
  status: string,
  plan: keyof typeof SIM_PRODUCTS,
  periodEnd: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { product, price } = SIM_PRODUCTS[plan];
  return {
    id: subscriptionId,
    object: 'subscription',
    customer: customerId,
    status,
    cancel_at_period_end: false,
    trial_end: null,
    items: {
      object: 'list',
      data: [
        {
          id: `si_${subscriptionId}`,
          object: 'subscription_item',
          quantity: 1,
          current_period_end: periodEnd,
          price: { id: price, object: 'price', product, lookup_key: `${plan}_monthly` },
        },
      ],
    },
    ...extra,
  };
}

function invoice(
  timeline: Timeline,
  type: string,
  customerId: string,
  subscriptionId: string,
  invoiceId: string,
  gap = 1,
) {
  const paid = type === 'invoice.paid' || type === 'invoice.payment_succeeded';
  timeline.add(
    type,
    {
      id: invoiceId,
      object: 'invoice',
      customer: customerId,
      status: paid ? 'paid' : 'open',
      parent: { type: 'subscription_details', subscription_details: { subscription: subscriptionId } },
      attempt_count: 1,
    },
    gap,
  );
}

/** Trial, active, past due, recovered, upgraded, canceled. */
function lifecycle(timeline: Timeline): string {
  const customerId = id('cus');
  const userId = id('user');
  const sub = id('sub');
  const month = 30 * 86400;
  customer(timeline, customerId, userId);
  timeline.add('checkout.session.completed', {
    id: id('cs'),
    object: 'checkout.session',
    customer: customerId,
    mode: 'subscription',
    payment_status: 'no_payment_required',
    subscription: sub,
    client_reference_id: userId,
    metadata: { userId },
  });
  const trialEnd = timeline.now + 14 * 86400;
  timeline.add(
    'customer.subscription.created',
    subscriptionSnapshot(sub, customerId, 'trialing', 'pro', trialEnd, { trial_end: trialEnd }),
    0,
  );
  timeline.add(
    'customer.subscription.trial_will_end',
    subscriptionSnapshot(sub, customerId, 'trialing', 'pro', trialEnd, { trial_end: trialEnd }),
  );
  timeline.add(
    'customer.subscription.updated',
    subscriptionSnapshot(sub, customerId, 'active', 'pro', trialEnd + month),
    1,
    { status: 'trialing' },
  );
  invoice(timeline, 'invoice.paid', customerId, sub, id('in'), 0);
  const failing = id('in');
  invoice(timeline, 'invoice.payment_failed', customerId, sub, failing);
  timeline.add(
    'customer.subscription.updated',
    subscriptionSnapshot(sub, customerId, 'past_due', 'pro', trialEnd + month),
    0,
    { status: 'active' },
  );
  invoice(timeline, 'invoice.paid', customerId, sub, failing);
  timeline.add(
    'customer.subscription.updated',
    subscriptionSnapshot(sub, customerId, 'active', 'pro', trialEnd + 2 * month),
    0,
    { status: 'past_due' },
  );
  timeline.add(
    'customer.subscription.updated',
    subscriptionSnapshot(sub, customerId, 'active', 'team', trialEnd + 2 * month),
    1,
    {
      items: { data: [{ id: `si_${sub}`, price: { id: SIM_PRODUCTS.pro.price } }] },
    },
  );
  timeline.add(
    'customer.subscription.deleted',
    subscriptionSnapshot(sub, customerId, 'canceled', 'team', trialEnd + 2 * month),
  );
  return customerId;
}

function purchase(
  timeline: Timeline,
  refund: boolean,
): { customerId: string; charge: string; paymentIntent: string } {
  const customerId = id('cus');
  const userId = id('user');
  const paymentIntent = id('pi');
  const charge = id('ch');
  customer(timeline, customerId, userId);
  timeline.add('checkout.session.completed', {
    id: id('cs'),
    object: 'checkout.session',
    customer: customerId,
    mode: 'payment',
    payment_status: 'paid',
    payment_intent: paymentIntent,
    amount_total: 4900,
    currency: 'usd',
    client_reference_id: userId,
    metadata: { userId, plan: 'lifetime' },
  });
  timeline.add(
    'payment_intent.succeeded',
    {
      id: paymentIntent,
      object: 'payment_intent',
      customer: customerId,
      latest_charge: charge,
      amount: 4900,
      status: 'succeeded',
    },
    0,
  );
  if (refund) {
    timeline.add(
      'charge.refunded',
      {
        id: charge,
        object: 'charge',
        customer: customerId,
        payment_intent: paymentIntent,
        amount: 4900,
        amount_refunded: 4900,
        refunded: true,
      },
      60,
      { amount_refunded: 0, refunded: false },
    );
  }
  return { customerId, charge, paymentIntent };
}

/** A purchase, then a dispute opened and closed; the dispute names only the charge and payment intent. */
function dispute(timeline: Timeline): string {
  const bought = purchase(timeline, false);
  const dp = id('dp');
  const object = {
    id: dp,
    object: 'dispute',
    charge: bought.charge,
    payment_intent: bought.paymentIntent,
    amount: 4900,
    reason: 'fraudulent',
  };
  timeline.add('charge.dispute.created', { ...object, status: 'needs_response' }, 3600);
  timeline.add('charge.dispute.closed', { ...object, status: 'won' }, 86400, { status: 'under_review' });
  return bought.customerId;
}

/** Active, then three failed payments, past due, unpaid, canceled. */
function dunning(timeline: Timeline): string {
  const customerId = id('cus');
  const sub = id('sub');
  const periodEnd = timeline.now + 30 * 86400;
  customer(timeline, customerId, id('user'));
  timeline.add(
    'customer.subscription.created',
    subscriptionSnapshot(sub, customerId, 'active', 'pro', periodEnd),
  );
  invoice(timeline, 'invoice.paid', customerId, sub, id('in'), 0);
  const renewal = id('in');
  for (let attempt = 0; attempt < 3; attempt++)
    invoice(timeline, 'invoice.payment_failed', customerId, sub, renewal, 3 * 86400);
  timeline.add(
    'customer.subscription.updated',
    subscriptionSnapshot(sub, customerId, 'past_due', 'pro', periodEnd),
    0,
    { status: 'active' },
  );
  timeline.add(
    'customer.subscription.updated',
    subscriptionSnapshot(sub, customerId, 'unpaid', 'pro', periodEnd),
    86400,
    { status: 'past_due' },
  );
  timeline.add(
    'customer.subscription.deleted',
    subscriptionSnapshot(sub, customerId, 'canceled', 'pro', periodEnd),
    86400,
  );
  return customerId;
}

export interface Scenario {
  events: Stripe.Event[];
  customers: string[];
}

/** Builds a scenario's events, starting at `start` (seconds since the epoch). */
export function buildScenario(
  name: ScenarioName,
  options: { customers?: number; start?: number } = {},
): Scenario {
  const timeline = new Timeline(options.start ?? Math.floor(Date.now() / 1000) - 3600);
  productEvents(timeline);
  const customers: string[] = [];
  const one: Record<Exclude<ScenarioName, 'many'>, () => string> = {
    lifecycle: () => lifecycle(timeline),
    purchase: () => purchase(timeline, true).customerId,
    dispute: () => dispute(timeline),
    dunning: () => dunning(timeline),
  };
  if (name === 'many') {
    const kinds = ['lifecycle', 'purchase', 'dispute', 'dunning'] as const;
    for (let i = 0; i < (options.customers ?? 25); i++) customers.push(one[kinds[i % kinds.length]]());
  } else {
    customers.push(one[name]());
  }
  return { events: timeline.events, customers };
}

/** The delivery order: as generated, or shuffled; with `duplicates`, some events arrive two or three times. */
export function deliveries(
  events: Stripe.Event[],
  options: { shuffle?: boolean; duplicates?: boolean },
  random = Math.random,
): Stripe.Event[] {
  // With duplicates every event arrives one to three times, and the first at least twice.
  const copies = (index: number) => Math.max(index === 0 ? 2 : 1, 1 + Math.floor(random() * 3));
  const out = options.duplicates
    ? events.flatMap((event, index) => Array.from({ length: copies(index) }, () => event))
    : [...events];
  if (options.shuffle) {
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
  }
  return out;
}
