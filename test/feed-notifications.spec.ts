/**
 * The change feed's notifications (state-feed.ts, `moveCheckpoint` in projection-store.ts): a projected
 * batch's announcement carries its feed rows when they fit in a notification, and an instance that does
 * not project hands such a batch on from them; a batch too large for one is read back. Two instances in
 * this process on one PostgreSQL database (notifications need a server), an admin subscriber on the one
 * that does not project, and a session of the test's own listening to what the projector announces.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import type { BillingState } from '../src/billing/billing-state.js';
import { PROJECTION_CHANNEL, parseFeedHead } from '../src/projections/projection-store.js';
import { MqttTokens } from '../src/realtime/mqtt-tokens.js';
import { startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';
import { closeMqttClients, connectMqtt, recordMessages, subscribe } from './support/mqtt.js';
import { stripeEvent, uid } from './support/stripe.js';
import { poll } from './support/until.js';

describe('a checkpoint announcement', () => {
  const rows = [{ kind: 'state', customer_id: 'cus_1', user_id: null, payload: { version: 3 } }];

  it('is read as its head alone, in the form a replay swap and earlier versions send', () => {
    expect(parseFeedHead('42:3')).toEqual({ position: 42, generation: 3 });
    expect(parseFeedHead('42:3:40:')).toEqual({ position: 42, generation: 3 });
  });

  it("is read with the batch's rows and the checkpoint it moved from, when it carries them", () => {
    expect(parseFeedHead(`42:3:40:${JSON.stringify(rows)}`)).toEqual({
      position: 42,
      generation: 3,
      batch: {
        previous: 40,
        rows: [{ kind: 'state', customerId: 'cus_1', userId: null, payload: { version: 3 } }],
      },
    });
  });

  it('is read as its head alone when the rows are not JSON, and as nothing when it is not one', () => {
    expect(parseFeedHead('42:3:40:[{')).toEqual({ position: 42, generation: 3 });
    expect(parseFeedHead('')).toBeNull();
    expect(parseFeedHead('x:3')).toBeNull();
    expect(parseFeedHead(undefined)).toBeNull();
  });
});

const describeWithServer = serverUrl ? describe : describe.skip;
describeWithServer('two instances following the announcements', () => {
  let db: TestDatabase;
  let projecting: RunningApp;
  let other: RunningApp;
  let listener: pg.Client;
  const announced: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    projecting = await startApp(db);
    other = await startApp(db);
    listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    listener.on('notification', (message) => announced.push(message.payload ?? ''));
    await listener.query(`LISTEN ${PROJECTION_CHANNEL}`);
  });

  afterAll(async () => {
    closeMqttClients();
    await listener?.end();
    await other?.close();
    await projecting?.close();
    await db?.drop();
  });

  it('pushes every state in order, from batches announced with their rows and from one too large for that', async () => {
    expect(projecting.projector.projecting).toBe(true);
    expect(other.projector.projecting).toBe(false);
    const admin = await new MqttTokens(other.config.mqttTokenSecret).mint({ admin: true });
    const watcher = await connectMqtt(`${other.url.replace('http', 'ws')}/mqtt`, admin.token, admin.clientId);
    expect(await subscribe(watcher, 'billing/customers/+/state')).toBe(1);
    const received = recordMessages(watcher);

    const customers = Array.from({ length: 40 }, () => uid('cus'));
    const created = (customer: string) =>
      stripeEvent('customer.created', {
        id: customer,
        object: 'customer',
        email: `${customer}@example.com`,
        metadata: { note: 'x'.repeat(200) },
      });
    const renamed = (customer: string) =>
      stripeEvent('customer.updated', {
        id: customer,
        object: 'customer',
        email: `renamed-${customer}@example.com`,
        metadata: { note: 'x'.repeat(200) },
      });
    // Held back by the checkpoint's lock, the 40 customers' events are projected in few batches, each
    // with more than a notification can carry; one customer at a time after that, each batch small.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM projector_checkpoints WHERE name = 'billing' FOR UPDATE`);
      await Promise.all(customers.map((customer) => projecting.deliver(created(customer))));
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    for (const customer of customers.slice(0, 5)) await projecting.deliverFolded(renamed(customer));
    await projecting.settle();

    const finals = new Map<string, string>(
      customers.map((customer, i) => [
        customer,
        i < 5 ? `renamed-${customer}@example.com` : `${customer}@example.com`,
      ]),
    );
    const emailsOf = (customer: string) =>
      received
        .filter((message) => message.topic === `billing/customers/${customer}/state`)
        .map((message) => (message.payload as unknown as BillingState).email);
    await poll(
      async () => customers.filter((customer) => emailsOf(customer).at(-1) !== finals.get(customer)),
      (missing) => missing.length === 0,
      10_000,
    );
    for (const customer of customers.slice(0, 5))
      expect(emailsOf(customer)).toEqual([`${customer}@example.com`, `renamed-${customer}@example.com`]);

    const heads = announced.map((payload) => parseFeedHead(payload));
    expect(heads.some((head) => head?.batch)).toBe(true);
    expect(heads.some((head) => head && !head.batch)).toBe(true);
  }, 30_000);
});
