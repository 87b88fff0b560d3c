/**
 * The invariant of SPEC section 3, checked with fast-check through the real webhook endpoint: random
 * realistic lifecycles for several customers, delivered concurrently, in random order, with duplicates.
 * After each run the live projection of every customer equals the fold of its sorted log; at the end a
 * full replay reproduces every live projection exactly. `PROPERTY_RUNS` raises the number of runs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type Stripe from 'stripe';
import { billingState, type BillingState } from '../src/billing/billing-state.js';
import { parseCatalog } from '../src/billing/catalog.js';
import { foldCustomer } from '../src/billing/customer.js';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { sendEvent, stripeEvent, uid } from './support/stripe.js';
import { customerEvents } from '../src/event-log/log-reads.js';
import { LIVE_TABLES } from '../src/projections/projection-store.js';

const CATALOG = {
  prices: { price_basic: ['basic'], price_pro: ['basic', 'pro'] },
  plans: { lifetime: ['lifetime'] },
};
const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);

let db: TestDatabase;
let app: RunningApp;
const customersSeen = new Set<string>();

beforeAll(async () => {
  db = await createTestDatabase();
  const catalogFile = join(db.dataDir, 'catalog.json');
  writeFileSync(catalogFile, JSON.stringify(CATALOG));
  app = await startApp(db, { CATALOG_FILE: catalogFile });
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

type Step =
  | { kind: 'customer'; userId: string | null }
  | {
      kind: 'subscription';
      type: 'created' | 'updated' | 'deleted' | 'paused' | 'resumed';
      status: string;
      price: string;
    }
  | { kind: 'invoice'; type: 'paid' | 'payment_failed' | 'payment_action_required'; invoice: number }
  | { kind: 'purchase'; paid: boolean }
  | { kind: 'refund' }
  | { kind: 'dispute'; open: boolean; across: boolean };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('customer' as const),
    userId: fc.option(fc.constantFrom('user_a', 'user_b'), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('subscription' as const),
    type: fc.constantFrom(
      'created' as const,
      'updated' as const,
      'updated' as const,
      'deleted' as const,
      'paused' as const,
      'resumed' as const,
    ),
    status: fc.constantFrom('trialing', 'active', 'past_due', 'canceled', 'unpaid'),
    price: fc.constantFrom('price_basic', 'price_pro'),
  }),
  fc.record({
    kind: fc.constant('invoice' as const),
    type: fc.constantFrom('paid' as const, 'payment_failed' as const, 'payment_action_required' as const),
    invoice: fc.integer({ min: 1, max: 2 }),
  }),
  fc.record({ kind: fc.constant('purchase' as const), paid: fc.boolean() }),
  fc.record({ kind: fc.constant('refund' as const) }),
  fc.record({ kind: fc.constant('dispute' as const), open: fc.boolean(), across: fc.boolean() }),
);

/** `neighbour`: another customer of the same run, whose charge a dispute `across` customers names. */
function toEvent(customer: string, neighbour: string, step: Step, created: number): Stripe.Event {
  const options = { created };
  switch (step.kind) {
    case 'customer':
      return stripeEvent(
        'customer.updated',
        {
          id: customer,
          object: 'customer',
          email: `${customer}@example.com`,
          metadata: step.userId ? { userId: step.userId } : {},
        },
        options,
      );
    case 'subscription': {
      const status = step.type === 'deleted' ? 'canceled' : step.type === 'paused' ? 'paused' : step.status;
      return stripeEvent(
        `customer.subscription.${step.type}`,
        {
          id: `sub_${customer}`,
          object: 'subscription',
          customer,
          status: status as Stripe.Subscription.Status,
          cancel_at_period_end: false,
          items: {
            object: 'list',
            data: [
              {
                id: `si_${customer}`,
                object: 'subscription_item',
                quantity: 1,
                current_period_end: created + 2_592_000,
                price: { id: step.price, object: 'price', product: 'prod_main', lookup_key: null },
              },
            ],
          },
        } as never,
        options,
      );
    }
    case 'invoice':
      return stripeEvent(
        `invoice.${step.type}`,
        {
          id: `in_${customer}_${step.invoice}`,
          object: 'invoice',
          customer,
          status: step.type === 'paid' ? 'paid' : 'open',
        },
        options,
      );
    case 'purchase':
      return stripeEvent(
        'checkout.session.completed',
        {
          id: `cs_${customer}`,
          object: 'checkout.session',
          customer,
          mode: 'payment',
          payment_status: step.paid ? 'paid' : 'unpaid',
          payment_intent: `pi_${customer}`,
          amount_total: 4900,
          currency: 'usd',
          metadata: { plan: 'lifetime' },
        },
        options,
      );
    case 'refund':
      return stripeEvent(
        'charge.refunded',
        {
          id: `ch_${customer}`,
          object: 'charge',
          customer,
          payment_intent: `pi_${customer}`,
          refunded: true,
          amount_refunded: 4900,
        },
        options,
      );
    case 'dispute':
      // A dispute names no customer: it reaches one through the charge or payment intent another event
      // linked. One `across` customers names a neighbour's charge beside this customer's payment intent,
      // so which links exist when, and the smallest-reference rule, decide where it goes.
      return stripeEvent(
        step.open ? 'charge.dispute.created' : 'charge.dispute.closed',
        {
          id: step.across ? `dp_${customer}_x` : `dp_${customer}`,
          object: 'dispute',
          charge: `ch_${step.across ? neighbour : customer}`,
          payment_intent: `pi_${customer}`,
        },
        options,
      );
  }
}

const lifecycleArb = fc.array(fc.tuple(stepArb, fc.integer({ min: 0, max: 4 })), {
  minLength: 1,
  maxLength: 8,
});

const runArb = fc.record({
  lifecycles: fc.array(lifecycleArb, { minLength: 1, maxLength: 3 }),
  order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 40, maxLength: 40 }),
  duplicates: fc.array(fc.nat(), { maxLength: 4 }),
});

/** The fold of the customer's sorted log; undefined when no event reached the customer. */
async function expectedState(customerId: string): Promise<BillingState | undefined> {
  const catalog = parseCatalog(JSON.stringify(CATALOG), 'catalog.json');
  const events = await customerEvents(app.sql, LIVE_TABLES.routes, customerId, {
    upTo: Number.MAX_SAFE_INTEGER,
  });
  if (events.length === 0) return undefined;
  return billingState(foldCustomer(customerId, events).state, catalog, {});
}

async function liveStates(): Promise<Map<string, BillingState>> {
  const rows = await app.sql.query<{ customer_id: string; view: BillingState }>(
    `SELECT customer_id, view FROM billing_customers`,
  );
  return new Map(rows.map((row) => [row.customer_id, row.view]));
}

/** The subscription and entitlement rows of `customers` are exactly those their projected views list. */
async function expectRowsOfViews(customers: string[], live: Map<string, BillingState>): Promise<void> {
  const epoch = (until: string | null | undefined) => (until ? Math.floor(Date.parse(until) / 1000) : null);
  const subscriptions = await app.sql.query<{ customer_id: string; subscription_id: string; status: string }>(
    `SELECT customer_id, subscription_id, status FROM billing_subscriptions
      WHERE customer_id = ANY($1::text[]) ORDER BY subscription_id`,
    [customers],
  );
  expect(subscriptions).toEqual(
    customers
      .flatMap((customer) =>
        (live.get(customer)?.subscriptions ?? []).map((subscription) => ({
          customer_id: customer,
          subscription_id: subscription.id,
          status: subscription.status,
        })),
      )
      .sort((a, b) => a.subscription_id.localeCompare(b.subscription_id)),
  );
  const entitlements = await app.sql.query<Record<string, string | number | null>>(
    `SELECT customer_id, feature, source, source_id, floor(extract(epoch FROM until))::int AS until
       FROM billing_entitlements WHERE customer_id = ANY($1::text[])`,
    [customers],
  );
  const key = (row: Record<string, unknown>) =>
    JSON.stringify([row.customer_id, row.feature, row.source, row.source_id, row.until]);
  const listed = new Set(
    customers.flatMap((customer) =>
      (live.get(customer)?.entitlements ?? []).map((entitlement) =>
        key({
          customer_id: customer,
          feature: entitlement.feature,
          source: entitlement.source,
          source_id: entitlement.sourceId,
          until: epoch(entitlement.until),
        }),
      ),
    ),
  );
  expect(
    new Set(entitlements.map((row) => key({ ...row, until: row.until === null ? null : Number(row.until) }))),
  ).toEqual(listed);
}

it(`live projections equal the fold of the sorted log (${RUNS} runs)`, async () => {
  await fc.assert(
    fc.asyncProperty(runArb, async ({ lifecycles, order, duplicates }) => {
      const base = 1_790_000_000;
      const customers = lifecycles.map(() => uid('cus'));
      const events = lifecycles.flatMap((steps, c) => {
        let t = base;
        const neighbour = customers[(c + 1) % customers.length];
        return steps.map(([step, gap]) => toEvent(customers[c], neighbour, step, (t += gap)));
      });
      const deliveries = [...events, ...duplicates.map((d) => events[d % events.length])]
        .map((event, i) => ({ event, key: order[i % order.length] + i * 1e-9 }))
        .sort((a, b) => a.key - b.key)
        .map(({ event }) => event);
      const answers = await Promise.all(deliveries.map((event) => sendEvent(app.url, event, WEBHOOK_SECRET)));
      expect(answers.every((answer) => answer.status === 200)).toBe(true);
      app.projector.wake();
      await app.projector.idle();
      const live = await liveStates();
      for (const customer of customers) {
        const expected = await expectedState(customer);
        expect(live.get(customer)).toEqual(expected);
        if (expected) customersSeen.add(customer);
      }
      await expectRowsOfViews(customers, live);
    }),
    { numRuns: RUNS },
  );
});

it('a full replay reproduces every live projection', async () => {
  const before = await liveStates();
  expect(before.size).toBeGreaterThanOrEqual(customersSeen.size);
  const started = await fetch(`${app.url}/admin/replay`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  expect(started.status).toBe(202);
  const { jobId } = (await started.json()) as { jobId: string };
  let status: { state: string; processed: number; total: number };
  do {
    await new Promise((resolve) => setTimeout(resolve, 50));
    status = (await (
      await fetch(`${app.url}/admin/replay/${jobId}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    ).json()) as typeof status;
  } while (status.state === 'running');
  expect(status.state).toBe('done');
  expect(status.processed).toBe(status.total);
  const after = await liveStates();
  expect(after).toEqual(before);
});
