/**
 * Projection in the append's transaction (`EventLog.projectInline`, `BillingProjector.projectInline`): a
 * webhook projected there is in the projection tables when it is acknowledged, one commit instead of two.
 * It must never cost an append: when the checkpoint's lock is held elsewhere the webhook is answered
 * without waiting and projected afterwards, and when the projection fails the events are stored alone.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { openDatabase, type Sql } from '../src/database/database.js';
import { EventLog } from '../src/event-log/event-log.js';
import { eventToAppend } from '../src/ingest/stripe-webhook.js';
import { Metrics } from '../src/observability/metrics.js';
import { startApp, WEBHOOK_SECRET, type RunningApp } from './support/app.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';
import { sendEvent, stripeEvent, uid } from './support/stripe.js';

let db: TestDatabase;
let app: RunningApp;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const emailChanged = (customer: string, email: string): Stripe.Event =>
  stripeEvent('customer.updated', { id: customer, object: 'customer', email });

async function storedEmail(sql: Sql, customer: string): Promise<string | null> {
  const [row] = await sql.query<{ email: string }>(
    `SELECT email FROM billing_customers WHERE customer_id = $1`,
    [customer],
  );
  return row?.email ?? null;
}

async function appendBatches(): Promise<number> {
  const metric = await app.app.get(Metrics).projectionBatches.get();
  return metric.values.find((value) => value.labels.path === 'append')?.value ?? 0;
}

it('has a webhook projected in its append already in the tables when it is acknowledged', async () => {
  let inline = 0;
  for (let i = 0; i < 5; i++) {
    const customer = uid('cus');
    const before = await appendBatches();
    expect((await sendEvent(app.url, emailChanged(customer, `${i}@x.test`), WEBHOOK_SECRET)).status).toBe(
      200,
    );
    // A pass of the projector's own (its one-second safety net) may be running, and then the append
    // leaves the event to it; any webhook projected in its append must be in the tables now.
    if ((await appendBatches()) > before) {
      inline++;
      expect(await storedEmail(app.sql, customer)).toBe(`${i}@x.test`);
    }
    await app.settle();
    expect(await storedEmail(app.sql, customer)).toBe(`${i}@x.test`);
  }
  expect(inline).toBeGreaterThan(0);
});

(serverUrl ? it : it.skip)(
  "answers without waiting while another transaction holds the projector's lock, and projects after",
  async () => {
    const holder = await openDatabase({ url: db.url, dataDir: db.dataDir }, 1);
    const customer = uid('cus');
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => (locked = resolve));
    const lock = holder.transaction(async (tx) => {
      await tx.query(`SELECT position FROM projector_checkpoints WHERE name = 'billing' FOR UPDATE`);
      locked();
      await released;
    });
    try {
      await holding;
      expect((await sendEvent(app.url, emailChanged(customer, 'held@x.test'), WEBHOOK_SECRET)).status).toBe(
        200,
      );
      expect(await storedEmail(app.sql, customer)).toBeNull();
    } finally {
      release();
      await lock;
      await holder.close();
    }
    await app.settle();
    expect(await storedEmail(app.sql, customer)).toBe('held@x.test');
  },
);

it('stores the events alone when the projection in their transaction fails, and undoes what it wrote', async () => {
  const log = new EventLog(app.sql);
  let wakeUps = 0;
  log.onAppended(() => wakeUps++);
  const object = uid('ch');
  log.projectInline({
    ready: () => true,
    project: async (tx) => {
      await tx.query(`INSERT INTO billing_links (object_id, customer_id) VALUES ($1, 'cus_x')`, [object]);
      await tx.query(`SELECT 1 / 0`);
      return null;
    },
  });
  const event = emailChanged(uid('cus'), 'alone@x.test');
  const result = await log.appendEvent(eventToAppend(event, JSON.stringify(event)));
  expect(result.duplicate).toBe(false);
  expect(result.position).toBeGreaterThan(0);
  const rows = await app.sql.query<{ position: string }>(`SELECT position FROM stripe_events WHERE id = $1`, [
    event.id,
  ]);
  expect(rows.map((row) => Number(row.position))).toEqual([result.position]);
  expect(await app.sql.query(`SELECT 1 FROM billing_links WHERE object_id = $1`, [object])).toEqual([]);
  expect(wakeUps).toBe(1);
});
