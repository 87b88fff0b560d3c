/**
 * Fuzzing MQTT (issue 14), over TCP and WebSocket: random bytes, CONNECT packets with generated and
 * oversized client ids, usernames and passwords, the same packets cut short; topic tricks from a client
 * with a valid token (`..`, `+`, `#`, `$SYS/#`, ids outside the allowed pattern, Unicode); a SUBSCRIBE
 * flood and a CONNECT flood from one client. The broker stays up, a subscriber connected throughout keeps
 * receiving its customer's states, each trick gets SUBACK 0x80 on a connection that stays, and a flooding
 * client is disconnected. `FUZZ_RUNS` raises the number of generated connections (CI: 300).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { malformed, overTcp, overWebSocket, topicTricks } from '../bench/mqtt-cases.js';
import { BillingBroker } from '../src/realtime/billing-broker.js';
import { startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { closeMqttClients, connectMqtt, mintToken, subscribe } from './support/mqtt.js';
import { stripeEvent, uid } from './support/stripe.js';

const RUNS = Math.max(50, Math.floor(Number(process.env.FUZZ_RUNS ?? 2000) / 7));

let db: TestDatabase;
let app: RunningApp;
let tcpPort: number;
let wsUrl: string;
let watcher: MqttClient;
const watched = uid('cus');
const seen: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db, { MQTT_TCP_PORT: '0' });
  tcpPort = app.app.get(BillingBroker).tcpPort()!;
  wsUrl = `${app.url.replace('http', 'ws')}/mqtt`;
  const grant = await mintToken(app.url, { customerId: watched });
  watcher = await connectMqtt(wsUrl, grant.token, grant.clientId);
  watcher.on('message', (_topic, payload) =>
    seen.push((JSON.parse(payload.toString()) as { email: string }).email),
  );
  expect(await subscribe(watcher, `billing/customers/${watched}/state`)).toBe(1);
});

afterAll(async () => {
  closeMqttClients();
  await app?.close();
  await db?.drop();
});

/** A change to the watched customer reaches the watcher: the broker is up and still delivering. */
async function stillDelivering(): Promise<void> {
  const email = `${uid('m')}@example.com`;
  await app.deliverFolded(stripeEvent('customer.updated', { id: watched, object: 'customer', email }));
  const deadline = Date.now() + 5000;
  while (!seen.includes(email)) {
    if (Date.now() > deadline) throw new Error('the watcher stopped receiving');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

it(`stays up and keeps delivering through ${RUNS} malformed connections over TCP and WebSocket`, async () => {
  await fc.assert(
    fc.asyncProperty(malformed, fc.boolean(), async (bytes, tcp) => {
      await (tcp ? overTcp(tcpPort, bytes) : overWebSocket(wsUrl, bytes));
    }),
    { numRuns: RUNS },
  );
  await stillDelivering();
}, 120_000);

it('answers topic tricks with SUBACK 0x80 and keeps the connection', async () => {
  const grant = await mintToken(app.url, { customerId: uid('cus') });
  const client = await connectMqtt(wsUrl, grant.token, grant.clientId);
  const tricks = topicTricks(watched);
  for (const topic of tricks) expect(await subscribe(client, topic)).toBe(128);
  expect(client.connected).toBe(true);
  await stillDelivering();
});

it('disconnects a client that floods SUBSCRIBE, and only that client', async () => {
  const grant = await mintToken(app.url, { customerId: uid('cus') });
  const flooder = await connectMqtt(wsUrl, grant.token, grant.clientId);
  const closed = new Promise<void>((resolve) => flooder.once('close', () => resolve()));
  for (let i = 0; i < 200 && flooder.connected; i++) {
    flooder.subscribe(grant.topics[0], { qos: 1 });
  }
  await closed;
  expect(flooder.connected).toBe(false);
  await stillDelivering();
});

it('turns away a client id that floods CONNECT, and lets others in', async () => {
  const grant = await mintToken(app.url, { customerId: uid('cus') });
  const outcomes = { connected: 0, refused: 0 };
  for (let i = 0; i < 40; i++) {
    try {
      const client = await connectMqtt(wsUrl, grant.token, grant.clientId);
      outcomes.connected++;
      client.end(true);
    } catch {
      outcomes.refused++;
    }
  }
  expect(outcomes.refused).toBeGreaterThan(0);
  expect(outcomes.connected).toBeLessThanOrEqual(20);
  const other = await mintToken(app.url, { customerId: uid('cus') });
  const fresh = await connectMqtt(wsUrl, other.token, other.clientId);
  expect(fresh.connected).toBe(true);
  await stillDelivering();
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  expect(metrics).toMatch(/paywire_mqtt_flood_disconnects_total\{kind="connect",instance="[^"]+"\} [1-9]/);
  expect(metrics).toMatch(/paywire_mqtt_flood_disconnects_total\{kind="subscribe",instance="[^"]+"\} [1-9]/);
});
