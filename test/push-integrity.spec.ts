/**
 * No state message is lost because another message followed it (SPEC section 6). Aedes 1.2 numbers each
 * packet when it is published but emits a retained one only after its retained store answered, so a
 * notable event published right after a state used to overtake it, and Aedes's per-client dedupe then
 * dropped the state as a duplicate for every client subscribed to both (moscajs/aedes#994, #955). These
 * tests drive real webhooks through the real server to real mqtt.js clients and compare what a client on
 * several topics receives with what a client on the state topic alone receives.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MqttTokens } from '../src/realtime/mqtt-tokens.js';
import { startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import {
  closeMqttClients,
  connectMqtt,
  mintToken,
  nextMessage,
  recordMessages,
  subscribe,
} from './support/mqtt.js';
import { stripeEvent, subscriptionEvent, uid } from './support/stripe.js';
import { until } from './support/until.js';

let db: TestDatabase;
let app: RunningApp;
let wsUrl: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db);
  wsUrl = `${app.url.replace('http', 'ws')}/mqtt`;
});

afterAll(async () => {
  closeMqttClients();
  await app?.close();
  await db?.drop();
});

const versionsOn = (messages: { topic: string; payload: Record<string, unknown> }[], topic: string) =>
  messages.filter((m) => m.topic === topic).map((m) => m.payload.version as number);

async function restVersion(customerId: string): Promise<number> {
  const response = await fetch(`${app.url}/admin/customers/${customerId}`, {
    headers: { authorization: `Bearer ${app.config.adminApiKey}` },
  });
  return ((await response.json()) as { version: number }).version;
}

it('delivers every state of 50 quick updates, in increasing version, to a client on both topics', async () => {
  const customer = uid('cus');
  const stateTopic = `billing/customers/${customer}/state`;
  const grant = await mintToken(app.url, { customerId: customer });
  const both = await connectMqtt(wsUrl, grant.token, `${customer}:both`);
  const stateOnly = await connectMqtt(wsUrl, grant.token, `${customer}:state-only`);
  expect(await subscribe(both, stateTopic)).toBe(1);
  expect(await subscribe(both, `billing/customers/${customer}/events`)).toBe(1);
  expect(await subscribe(stateOnly, stateTopic)).toBe(1);
  const onBoth = recordMessages(both);
  const onStateOnly = recordMessages(stateOnly);

  await app.deliver(subscriptionEvent(customer, { status: 'active' }));
  for (let i = 0; i < 50; i++) {
    const status = i % 2 === 0 ? 'past_due' : 'active';
    await app.deliver(subscriptionEvent(customer, { type: 'updated', status }));
  }
  await app.settle();
  const last = await restVersion(customer);
  await until(() => versionsOn(onStateOnly, stateTopic).includes(last));
  await until(() => versionsOn(onBoth, stateTopic).includes(last), 2_000).catch(() => undefined);

  const reference = versionsOn(onStateOnly, stateTopic);
  const received = versionsOn(onBoth, stateTopic);
  expect(reference.length).toBeGreaterThan(1);
  expect(received).toEqual(reference);
  expect(received).toEqual([...received].sort((a, b) => a - b));
  expect(new Set(received).size).toBe(received.length);
  // The notable events arrived too: the fix must not trade one topic for the other.
  expect(onBoth.some((m) => m.topic.endsWith('/events'))).toBe(true);
});

it('gives an admin on billing/# the final state of each of 20 customers updated concurrently, each with notable events', async () => {
  const admin = await new MqttTokens(app.config.mqttTokenSecret).mint({ admin: true });
  const watcher = await connectMqtt(wsUrl, admin.token, admin.clientId);
  expect(await subscribe(watcher, 'billing/#')).toBe(1);
  const received = recordMessages(watcher);
  const customers = Array.from({ length: 20 }, () => uid('cus'));

  await Promise.all(
    customers.map((customer) =>
      app.deliver(
        stripeEvent('customer.created', {
          id: customer,
          object: 'customer',
          email: `${customer}@example.com`,
        }),
        subscriptionEvent(customer, { status: 'trialing' }),
        subscriptionEvent(customer, { type: 'updated', status: 'active' }),
        stripeEvent('invoice.paid', { id: uid('in'), object: 'invoice', customer, status: 'paid' }),
      ),
    ),
  );
  await app.settle();
  const finals = new Map(await Promise.all(customers.map(async (c) => [c, await restVersion(c)] as const)));
  const hasFinal = (customer: string) =>
    versionsOn(received, `billing/customers/${customer}/state`).includes(finals.get(customer)!);
  await until(() => customers.every(hasFinal), 5_000).catch(() => undefined);

  expect(customers.filter((c) => !hasFinal(c))).toEqual([]);
  for (const customer of customers) {
    const versions = versionsOn(received, `billing/customers/${customer}/state`);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  }
  expect(received.filter((m) => m.topic.endsWith('/events')).length).toBeGreaterThanOrEqual(20);
});

it('shuts down with browsers connected, and gives a subscriber the stored state after the restart', async () => {
  const customer = uid('cus');
  const topic = `billing/customers/${customer}/state`;
  await app.deliverFolded(
    stripeEvent('customer.created', { id: customer, object: 'customer', email: `${customer}@example.com` }),
  );
  const grant = await mintToken(app.url, { customerId: customer });
  const before = await connectMqtt(wsUrl, grant.token, grant.clientId);
  expect(await subscribe(before, topic)).toBe(1);
  const dropped = new Promise<void>((resolve) => before.once('close', () => resolve()));
  // Nest closes the HTTP server before its shutdown hooks, and the server waits for open WebSockets: this
  // close never finished while a browser was connected.
  await app.close();
  await dropped;

  app = await startApp(db);
  wsUrl = `${app.url.replace('http', 'ws')}/mqtt`;
  const after = await connectMqtt(
    wsUrl,
    (await mintToken(app.url, { customerId: customer })).token,
    grant.clientId,
  );
  // The new process holds no retained message: the state is read from the projections on SUBSCRIBE.
  const state = nextMessage(after, topic);
  expect(await subscribe(after, topic)).toBe(1);
  expect((await state).payload).toMatchObject({ customerId: customer, email: `${customer}@example.com` });
});
