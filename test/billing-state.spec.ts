/**
 * Billing state over the admin API, from webhooks sent over real HTTP: the state as of a past instant,
 * late events (stale, or merged by re-folding the customer), events reached through links, and a poison
 * event that is marked failed without stopping its neighbours.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Stripe from 'stripe';
import type { BillingState } from '../src/billing/billing-state.js';
import type { EventPayload } from '../src/billing/events.js';
import { FOLD_INPUT_VERSION, foldInput } from '../src/billing/fold-input.js';
import { SQL, type Sql } from '../src/database/database.js';
import { ReplayService } from '../src/projections/replay.js';
import { ADMIN_KEY, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { stripeEvent, subscriptionEvent, uid } from './support/stripe.js';

let db: TestDatabase;
let app: RunningApp;

beforeAll(async () => {
  db = await createTestDatabase();
  const catalogFile = join(db.dataDir, 'catalog.yaml');
  writeFileSync(catalogFile, 'prices:\n  price_pro: [pro]\n');
  app = await startApp(db, { CATALOG_FILE: catalogFile });
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const admin = async (path: string) => {
  const response = await fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  // The answers are BillingState or event rows; the tests read them field by field.
  return { status: response.status, body: (await response.json()) as BillingState & Record<string, unknown> };
};

const subscription = (
  customer: string,
  status: string,
  created: number,
  type: 'created' | 'updated' | 'deleted' = 'updated',
  items?: unknown,
) => subscriptionEvent(customer, { type, status, created, periodEnd: created + 1000, items });

describe('GET /admin/customers/:id/state?asOf=', () => {
  it('folds the log up to that instant', async () => {
    const customer = uid('cus');
    await app.deliverFolded(
      subscription(customer, 'active', 1_790_000_000, 'created'),
      subscription(customer, 'canceled', 1_790_000_100, 'deleted'),
    );
    const during = await admin(`/admin/customers/${customer}/state?asOf=2026-09-21T14:14:00Z`);
    expect(during.status).toBe(200);
    expect(during.body.subscriptions[0].status).toBe('active');
    expect(during.body.entitlements.map((e) => e.feature)).toEqual(['pro']);
    const after = await admin(`/admin/customers/${customer}/state?asOf=2026-09-21T14:15:00Z`);
    expect(after.body.subscriptions[0].status).toBe('canceled');
    expect(after.body.entitlements).toEqual([]);
    expect(after.body).toEqual((await admin(`/admin/customers/${customer}`)).body);
    expect((await admin(`/admin/customers/${customer}/state?asOf=2020-01-01T00:00:00Z`)).status).toBe(404);
  });

  it('answers 400 naming asOf when it is not an ISO-8601 instant', async () => {
    expect(await admin(`/admin/customers/cus_1/state?asOf=yesterday`)).toEqual({
      status: 400,
      body: { error: 'invalid_parameter', parameter: 'asOf' },
    });
  });
});

describe('late events', () => {
  it('records an older snapshot as stale when it changes nothing', async () => {
    const customer = uid('cus');
    const late = subscription(customer, 'trialing', 1_790_000_000, 'created');
    await app.deliverFolded(subscription(customer, 'active', 1_790_000_500), late);
    expect((await admin(`/admin/customers/${customer}`)).body.subscriptions[0].status).toBe('active');
    expect((await admin(`/admin/events/${late.id}`)).body).toMatchObject({
      outcome: 'stale',
      customerId: customer,
    });
  });

  it('re-folds the customer when a late event adds something the later state lacks', async () => {
    const customer = uid('cus');
    const late = stripeEvent(
      'customer.created',
      { id: customer, object: 'customer', email: 'late@example.com', metadata: { userId: 'user_late' } },
      { created: 1_790_000_000 },
    );
    await app.deliverFolded(subscription(customer, 'active', 1_790_000_500, 'created'), late);
    expect((await admin(`/admin/customers/${customer}`)).body).toMatchObject({
      userId: 'user_late',
      email: 'late@example.com',
    });
    expect((await admin(`/admin/events/${late.id}`)).body.outcome).toBe('applied');
  });
});

it('keeps a dispute unlinked until an event links its charge to a customer', async () => {
  const customer = uid('cus');
  const dispute = stripeEvent(
    'charge.dispute.created',
    { id: uid('dp'), object: 'dispute', charge: `ch_${customer}`, payment_intent: `pi_${customer}` },
    { created: 1_790_000_100 },
  );
  await app.deliverFolded(dispute);
  expect((await admin(`/admin/events/${dispute.id}`)).body).toMatchObject({
    outcome: 'unlinked',
    customerId: null,
  });
  await app.deliverFolded(
    stripeEvent(
      'charge.refunded',
      { id: `ch_${customer}`, object: 'charge', customer, payment_intent: `pi_${customer}`, refunded: false },
      { created: 1_790_000_050 },
    ),
  );
  expect((await admin(`/admin/customers/${customer}`)).body.payment.status).toBe('disputed');
  expect((await admin(`/admin/events/${dispute.id}`)).body.outcome).toBe('applied');
});

it('marks a poison event failed with a reason and keeps projecting the others', async () => {
  const customer = uid('cus');
  const poison = subscription(customer, 'active', 1_790_000_000, 'created', { data: 5 });
  const fine = stripeEvent(
    'customer.created',
    { id: customer, object: 'customer', email: 'ok@example.com' },
    { created: 1_790_000_001 },
  );
  await app.deliverFolded(poison, fine);
  const failed = (await admin(`/admin/events/${poison.id}`)).body;
  expect(failed.outcome).toBe('failed');
  expect(failed.reason).toMatch(/TypeError/);
  expect((await admin(`/admin/customers/${customer}`)).body.email).toBe('ok@example.com');
});

it('stores an event of a type the fold does not handle as ignored', async () => {
  const customer = uid('cus');
  const finalized = stripeEvent(
    'invoice.finalized',
    { id: uid('in'), object: 'invoice', customer },
    { created: 1_790_000_000 },
  );
  await app.deliverFolded(finalized);
  expect((await admin(`/admin/events/${finalized.id}`)).body).toMatchObject({
    outcome: 'ignored',
    type: 'invoice.finalized',
    customerId: customer,
  });
});

describe('a replay', () => {
  async function replay() {
    const { done } = await app.app.get(ReplayService).start();
    expect((await done).state).toBe('done');
  }

  it('routes through links exactly as the live projector did: first link wins, smallest linked reference, late links', async () => {
    const [a, b, c] = [uid('cus'), uid('cus'), uid('cus')];
    const charge = (customer: string, ids: { ch?: string; pi: string }, created: number) =>
      stripeEvent(
        'charge.refunded',
        { id: ids.ch ?? uid('ch'), object: 'charge', customer, payment_intent: ids.pi, refunded: false },
        { created },
      );
    const dispute = (ids: { ch: string; pi: string }, created: number) =>
      stripeEvent(
        'charge.dispute.created',
        { id: uid('dp'), object: 'dispute', charge: ids.ch, payment_intent: ids.pi },
        { created },
      );
    const pi = `pi_${a}`;
    const ch = `ch_${b}`;
    const waitingFor = { ch: `ch_${c}`, pi: `pi_${c}` };
    const beforeLink = dispute(waitingFor, 1_790_000_000);
    const throughSmallest = dispute({ ch, pi }, 1_790_000_300);
    await app.deliverFolded(
      beforeLink,
      charge(a, { pi }, 1_790_000_100),
      // Also mentions pi, already linked to a: the first link wins.
      charge(b, { ch, pi }, 1_790_000_200),
      throughSmallest,
      charge(c, waitingFor, 1_790_000_400),
    );
    const routedTo = async (id: string) => (await admin(`/admin/events/${id}`)).body.customerId;
    const live = [await routedTo(beforeLink.id), await routedTo(throughSmallest.id)];
    // `ch_…` sorts before `pi_…`, so the dispute that names both goes to the charge's customer.
    expect(live).toEqual([c, b]);
    await replay();
    expect([await routedTo(beforeLink.id), await routedTo(throughSmallest.id)]).toEqual(live);
    for (const customer of [b, c])
      expect((await admin(`/admin/customers/${customer}`)).body.payment.status).toBe('disputed');
    expect((await admin(`/admin/customers/${a}`)).body.payment.status).toBe('ok');
  });

  it('reads whole the events the causal rank must compare: a chain on a field outside the fold input', async () => {
    const customer = uid('cus');
    const updated = (status: string, method: string, before: string) =>
      stripeEvent(
        'customer.subscription.updated',
        {
          id: `sub_${customer}`,
          object: 'subscription',
          customer,
          status: status as Stripe.Subscription.Status,
          default_payment_method: method,
          items: { object: 'list', data: [{ id: 'si_1', quantity: 1, price: { id: 'price_pro' } }] },
        } as never,
        { created: 1_790_000_500, previous: { default_payment_method: before } },
      );
    const first = updated('past_due', 'pm_2', 'pm_1');
    const second = updated('active', 'pm_3', 'pm_2');
    // Delivered backwards, in one second: only the previous_attributes chain puts `first` first.
    await app.deliverFolded(subscription(customer, 'incomplete', 1_790_000_000, 'created'), second, first);
    const live = (await admin(`/admin/customers/${customer}`)).body;
    expect(live.subscriptions[0].status).toBe('active');
    await replay();
    expect((await admin(`/admin/customers/${customer}`)).body).toEqual(live);
  });

  it('reads whole, and refreshes, rows without a current fold input (stored by an earlier release)', async () => {
    const customer = uid('cus');
    await app.deliverFolded(
      subscription(customer, 'active', 1_790_000_000, 'created'),
      stripeEvent(
        'customer.updated',
        { id: customer, object: 'customer', email: 'old@example.com', metadata: { userId: 'u_1' } },
        { created: 1_790_000_001 },
      ),
    );
    const live = (await admin(`/admin/customers/${customer}`)).body;
    const sql = app.app.get<Sql>(SQL);
    // One row as the release before fold inputs left it, one cut by an older version of the cut.
    await sql.query(
      `UPDATE stripe_events SET fold_input = CASE WHEN type = 'customer.updated' THEN '{}'::jsonb END,
              fold_input_version = CASE WHEN type = 'customer.updated' THEN 0 END
        WHERE customer_id = $1`,
      [customer],
    );
    await replay();
    expect((await admin(`/admin/customers/${customer}`)).body).toEqual(live);
    const rows = await sql.query<{
      payload: EventPayload;
      fold_input: EventPayload;
      fold_input_version: number;
    }>(`SELECT payload, fold_input, fold_input_version FROM stripe_events WHERE customer_id = $1`, [
      customer,
    ]);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.fold_input_version).toBe(FOLD_INPUT_VERSION);
      expect(row.fold_input).toEqual(foldInput(row.payload));
    }
  });

  it('marks a poison event failed again, with the same reason, and rebuilds the rest', async () => {
    const customer = uid('cus');
    const poison = subscription(customer, 'active', 1_790_000_000, 'created', { data: 'not a list' });
    const fine = subscription(customer, 'active', 1_790_000_010, 'created');
    await app.deliverFolded(poison, fine);
    const live = (await admin(`/admin/events/${poison.id}`)).body;
    const liveState = (await admin(`/admin/customers/${customer}`)).body;
    await replay();
    const replayed = (await admin(`/admin/events/${poison.id}`)).body;
    expect(replayed).toMatchObject({ outcome: 'failed', reason: live.reason });
    expect(replayed.reason).toMatch(/TypeError/);
    expect((await admin(`/admin/customers/${customer}`)).body).toEqual(liveState);
  });
});

describe('a canceled replay', () => {
  it('ends as failed with reason canceled, from any caller, and leaves the state as it was', async () => {
    const customer = uid('cus');
    await app.deliverFolded(
      stripeEvent('customer.created', { id: customer, object: 'customer', email: 'kept@example.com' }),
    );
    const before = (await admin(`/admin/customers/${customer}`)).body;
    const headers = { authorization: `Bearer ${ADMIN_KEY}` };
    // Canceled before its first page: a call right after the start reaches the row before the replay's
    // first progress write (on PGlite, queries run in the order they were issued).
    const replays = app.app.get(ReplayService);
    const jobId = (await replays.start()).job.jobId;
    expect(await replays.cancel(jobId)).toBe(true);
    const read = async () =>
      (await admin(`/admin/replay/${jobId}`)).body as unknown as { state: string; reason?: string };
    let job = await read();
    while (job.state === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = await read();
    }
    expect(job).toMatchObject({ state: 'failed', reason: 'canceled' });
    expect((await admin(`/admin/customers/${customer}`)).body).toEqual(before);
    const sql: Sql = app.app.get(SQL);
    const leftovers = await sql.query(
      `SELECT tablename FROM pg_tables WHERE tablename LIKE 'billing_%_next'`,
    );
    expect(leftovers).toEqual([]);
    expect((await fetch(`${app.url}/admin/replay/${jobId}`, { method: 'DELETE', headers })).status).toBe(404);
  });
});
