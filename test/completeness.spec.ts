/**
 * Completeness against Stripe's API (issue 12, SPEC section 8), with `fake-stripe` as Stripe: what a
 * random subset of lost webhooks leaves out, gap healing puts back (fast-check: the state equals the
 * fold of every event Stripe has); 429 and 500 storms end in completion under the rate ceiling;
 * reconcile finds a change Stripe made without an event, repairs it, and a replay keeps the repair.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { billingState, type BillingState } from '../src/billing/billing-state.js';
import { EMPTY_CATALOG } from '../src/billing/catalog.js';
import { foldCustomer } from '../src/billing/customer.js';
import type { LoggedEvent } from '../src/billing/events.js';
import { foldProducts } from '../src/billing/products.js';
import { GapHealer } from '../src/completeness/gap-healer.js';
import { ReconcileService } from '../src/completeness/reconcile.service.js';
import { SQL, type Sql } from '../src/database/database.js';
import { FakeStripe } from '../src/fake-stripe/fake-stripe.js';
import { ReplayService } from '../src/projections/replay.js';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 15);
const RATE = 40;

let db: TestDatabase;
let fake: FakeStripe;
let app: RunningApp;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase();
  // The fake's clock starts an hour back, so the tests can lay out history one step per second, in the
  // past, within the first heal's reach (Stripe's `created` never decreases, so neither may the clock).
  fake = await new FakeStripe({ webhookSecret: WEBHOOK_SECRET, clockOffset: -3500 }).start();
  app = await startApp(db, {
    STRIPE_SECRET_KEY: 'sk_test_paywire',
    STRIPE_API_URL: fake.url,
    STRIPE_API_RATE: String(RATE),
    // Turns are taken by the tests, not a timer, so that each assertion knows a heal has run.
    GAP_HEAL_INTERVAL_SECONDS: '0',
  });
  fake.configureWebhooks({ url: `${app.url}/webhooks/stripe` });
  sql = app.app.get(SQL);
});

afterAll(async () => {
  await app?.close();
  await fake?.close();
  await db?.drop();
});

const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

async function stateOf(customerId: string): Promise<BillingState> {
  const response = await fetch(`${app.url}/admin/customers/${customerId}`, { headers: admin });
  expect(response.status).toBe(200);
  return (await response.json()) as BillingState;
}

/** What users see of a state, without the bookkeeping that depends on arrival order. */
function billing(state: BillingState) {
  const { version: _version, asOf: _asOf, ...rest } = state;
  return rest;
}

/** The pure fold of every event Stripe has for the customer, in Stripe's own order. */
function foldOfStripe(customerId: string): BillingState {
  const logged: LoggedEvent[] = fake.allEvents().map((event, index) => ({
    id: event.id,
    type: event.type,
    created: event.created,
    position: index + 1,
    payload: event as LoggedEvent['payload'],
  }));
  const mine = logged.filter((event) => {
    const object = (event.payload.data?.object ?? {}) as { customer?: string; id?: string };
    return object.customer === customerId || object.id === customerId;
  });
  const products = foldProducts(logged.filter((event) => event.type.startsWith('product.')));
  return billingState(foldCustomer(customerId, mine).state, EMPTY_CATALOG, products);
}

type Step = 'renew' | 'fail' | 'cancel' | 'cancelAtPeriodEnd';

/** A subscription's life in the fake, each step in its own second (Stripe's `created` has one-second resolution). */
async function lifecycle(userId: string, steps: Step[], stepSeconds: number): Promise<string> {
  const session = fake.createCheckoutSession({
    mode: 'subscription',
    line_items: [{ price: fake.products[0].priceId, quantity: '1' }],
    metadata: { userId },
    success_url: 'http://example.test/success',
  });
  const completed = fake.completeCheckout(session.id);
  const subscriptionId = completed.subscription as string;
  for (const step of steps) {
    fake.clockOffset += stepSeconds;
    if (step === 'renew') fake.renew(subscriptionId);
    if (step === 'fail') fake.failPayment(subscriptionId);
    if (step === 'cancel') fake.cancel(subscriptionId);
    if (step === 'cancelAtPeriodEnd') {
      const response = await fetch(`${fake.url}/v1/subscriptions/${subscriptionId}`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk_test_paywire',
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'cancel_at_period_end=true',
      });
      expect(response.status).toBe(200);
    }
  }
  return completed.customer as string;
}

describe('gap healing', () => {
  it('puts back whatever subset of webhooks was lost: the state equals the fold of all Stripe has', async () => {
    const healer = app.app.get(GapHealer);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Step>('renew', 'fail', 'cancel', 'cancelAtPeriodEnd'), { maxLength: 6 }),
        fc.infiniteStream(fc.boolean()),
        async (steps, delivered) => {
          fake.deliverIf = () => delivered.next().value as boolean;
          const customerId = await lifecycle(`user_${fake.allEvents().length}`, steps, 10);
          fake.clockOffset += 10;
          await fake.drained();
          // Each run stands for a first heal: nothing has been healed before it.
          await sql.query(`DELETE FROM stripe_sync_jobs`);
          expect(await healer.heal()).toBe('done');
          await app.settle();
          expect(billing(await stateOf(customerId))).toEqual(billing(foldOfStripe(customerId)));
        },
      ),
      { numRuns: RUNS },
    );
    const [{ count }] = await sql.query<{ count: string }>(
      `SELECT count(*) FROM stripe_events WHERE source = 'api'`,
    );
    expect(Number(count)).toBeGreaterThan(0);
    fake.deliverIf = () => true;
  }, 120_000);
});

describe('backfill', () => {
  it('completes through 429 and 500 storms, under the request-rate ceiling', async () => {
    fake.configureWebhooks({ mode: 'drop' });
    fake.clockOffset += 1;
    for (let i = 0; i < 40; i++) {
      await lifecycle(`storm_${i}`, ['renew', 'fail', 'renew'], 1);
    }
    fake.configureWebhooks({ mode: 'deliver' });
    const since = fake.allEvents()[0].created;
    fake.injectFault({ status: 429, count: 6, retryAfterSeconds: 0.2 });
    fake.injectFault({ status: 500, count: 3 });
    fake.injectFault({ status: 429, count: 4 });
    const firstRequest = fake.requestTimes.length;
    const started = await fetch(`${app.url}/admin/backfill`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ since }),
    });
    expect(started.status).toBe(202);
    const { jobId } = (await started.json()) as { jobId: string };
    let job: { state: string; fetched: number; stored: number; duplicates: number; error?: string };
    for (;;) {
      job = (await (
        await fetch(`${app.url}/admin/backfill/${jobId}`, { headers: admin })
      ).json()) as typeof job;
      if (job.state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(job).toMatchObject({ state: 'done' });
    const listed = fake.allEvents().filter((event) => event.created >= since);
    expect(job.fetched).toBeGreaterThanOrEqual(listed.length);
    const ids = listed.map((event) => event.id);
    const [{ count }] = await sql.query<{ count: string }>(
      `SELECT count(*) FROM stripe_events WHERE id = ANY($1::text[])`,
      [ids],
    );
    expect(Number(count)).toBe(ids.length);
    // At most RATE requests a second (retries of the storms included): the client spaces them 1/RATE s
    // apart, so any RATE + 2 consecutive arrivals span a second even with a slot of network jitter.
    const times = fake.requestTimes.slice(firstRequest);
    expect(times.length).toBeGreaterThan(13);
    for (let i = 0; i + RATE + 1 < times.length; i++) {
      expect(times[i + RATE + 1] - times[i]).toBeGreaterThanOrEqual(1000);
    }
  }, 60_000);

  it('answers a bad since with 400 naming it, and an unknown job with 404', async () => {
    const bad = await fetch(`${app.url}/admin/backfill`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ since: 'yesterday' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'invalid_parameter', parameter: 'since' });
    const unknown = await fetch(`${app.url}/admin/backfill/00000000-0000-4000-8000-000000000000`, {
      headers: admin,
    });
    expect(unknown.status).toBe(404);
  });
});

describe('reconcile', () => {
  it('reports a status Stripe changed without an event, repairs it, and a replay keeps the repair', async () => {
    fake.clockOffset = 0;
    const customerId = await lifecycle('user_reconcile', [], 1);
    await fake.drained();
    await app.settle();
    const before = await stateOf(customerId);
    expect(before.subscriptions[0].status).toBe('active');
    const subscriptionId = before.subscriptions[0].id;
    fake.changeSilently(subscriptionId, { status: 'canceled' });

    const reconcile = async (repair: boolean) => {
      const response = await fetch(`${app.url}/admin/reconcile`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ customerId, repair }),
      });
      expect(response.status).toBe(200);
      return (await response.json()) as {
        checked: number;
        drifted: Array<{ path: string; paywire: unknown; stripe: unknown }>;
        repaired: number;
      };
    };
    const report = await reconcile(false);
    expect(report.checked).toBe(1);
    expect(report.drifted).toContainEqual({
      customerId,
      path: `subscriptions[${subscriptionId}].status`,
      paywire: 'active',
      stripe: 'canceled',
    });
    expect(report.drifted.map((drift) => drift.path)).toContain(
      `entitlements[pro/subscription/${subscriptionId}]`,
    );
    expect(report.repaired).toBe(0);
    expect((await stateOf(customerId)).subscriptions[0].status).toBe('active');

    expect((await reconcile(true)).repaired).toBe(1);
    await app.settle();
    const repaired = await stateOf(customerId);
    expect(repaired.subscriptions[0].status).toBe('canceled');
    // The subscription no longer grants `pro`; Stripe's own entitlement summary (unchanged in the fake) still does.
    expect(repaired.entitlements.filter((entitlement) => entitlement.source === 'subscription')).toEqual([]);
    const snapshots = await sql.query<{ id: string; type: string; source: string }>(
      `SELECT id, type, source FROM stripe_events WHERE source = 'reconcile'`,
    );
    expect(snapshots.length).toBeGreaterThan(0);
    for (const snapshot of snapshots) expect(snapshot.id).toMatch(/^pwsnap_/);
    expect((await reconcile(false)).drifted).toEqual([]);

    const { done } = await app.app.get(ReplayService).start();
    expect((await done).state).toBe('done');
    expect(billing(await stateOf(customerId))).toEqual(billing(repaired));
  }, 30_000);

  it('reconciles every customer, page by page, and finds none drifted when the log is complete', async () => {
    const report = await app.app.get(ReconcileService).reconcile({});
    const [{ count }] = await sql.query<{ count: string }>(`SELECT count(*) FROM billing_customers`);
    expect(report.checked).toBe(Number(count));
    expect(report.drifted).toEqual([]);
  }, 60_000);
});
