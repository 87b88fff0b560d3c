/**
 * Fuzzing MQTT (issue 14), over TCP and WebSocket: random bytes, CONNECT packets with generated and
 * oversized client ids, usernames and passwords, the same packets cut short; topic tricks from a client
 * with a valid token (`..`, `+`, `#`, `$SYS/#`, ids outside the allowed pattern, Unicode); a SUBSCRIBE
 * flood and a CONNECT flood from one client. The broker stays up, a subscriber connected throughout keeps
 * receiving its customer's states, each trick gets SUBACK 0x80 on a connection that stays, and a flooding
 * client is disconnected. `FUZZ_RUNS` raises the number of generated connections (CI: 300).
 */
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
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

/** Writes `bytes` on a raw TCP connection and waits until the broker closes it or 100 ms pass. */
function overTcp(bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = tcpConnect(tcpPort, '127.0.0.1', () => socket.write(bytes));
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.on('data', () => undefined);
    socket.once('close', done);
    socket.once('error', done);
    setTimeout(done, 100);
  });
}

/** The same over a WebSocket on the MQTT path. */
function overWebSocket(bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, 'mqtt');
    const done = () => {
      ws.terminate();
      resolve();
    };
    ws.once('open', () => ws.send(bytes));
    ws.once('close', done);
    ws.once('error', done);
    setTimeout(done, 100);
  });
}

const text = (max: number) => fc.string({ unit: 'binary', maxLength: max });
const connectPacket = fc
  .record({
    clientId: fc.oneof(
      text(100),
      fc.integer({ min: 1000, max: 65_000 }).map((n) => 'c'.repeat(n)),
    ),
    username: fc.option(text(200), { nil: undefined }),
    password: fc.option(
      fc.oneof(
        text(200),
        fc.integer({ min: 1000, max: 60_000 }).map((n) => 'p'.repeat(n)),
      ),
      { nil: undefined },
    ),
    protocolVersion: fc.constantFrom(3, 4, 5),
    /** A protocol level no MQTT has, written over the real one. */
    badLevel: fc.option(fc.integer({ min: 6, max: 255 }), { nil: undefined }),
    keepalive: fc.integer({ min: 0, max: 65_535 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
  })
  // Combinations mqtt-packet refuses to encode (an empty client id before 3.1.1) are left out.
  .filter(({ clientId, protocolVersion }) => clientId.length > 0 || protocolVersion === 4)
  .map(({ cut, password, badLevel, ...fields }) => {
    const bytes = mqttPacket.generate({
      cmd: 'connect',
      clean: true,
      protocolId: fields.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      ...fields,
      // MQTT 3.1.1 allows a password only after a username.
      ...(password !== undefined && fields.username !== undefined ? { password: Buffer.from(password) } : {}),
    });
    if (badLevel !== undefined) {
      const name = bytes.indexOf(fields.protocolVersion === 3 ? 'MQIsdp' : 'MQTT');
      bytes[name + (fields.protocolVersion === 3 ? 6 : 4)] = badLevel;
    }
    return cut === undefined ? bytes : bytes.subarray(0, cut % bytes.length);
  });
const noise = fc.uint8Array({ minLength: 1, maxLength: 2000 }).map((bytes) => Buffer.from(bytes));

it(`stays up and keeps delivering through ${RUNS} malformed connections over TCP and WebSocket`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(connectPacket, noise), fc.boolean(), async (bytes, tcp) => {
      await (tcp ? overTcp(bytes) : overWebSocket(bytes));
    }),
    { numRuns: RUNS },
  );
  await stillDelivering();
}, 120_000);

it('answers topic tricks with SUBACK 0x80 and keeps the connection', async () => {
  const grant = await mintToken(app.url, { customerId: uid('cus') });
  const client = await connectMqtt(wsUrl, grant.token, grant.clientId);
  const tricks = [
    '#',
    '+',
    '$SYS/#',
    'billing/#',
    'billing/customers/+/state',
    `billing/customers/${watched}/state`,
    'billing/customers/../state',
    'billing/customers/cus with space/state',
    'billing/customers/cüs_ümlaut/state',
    `billing/customers/${'x'.repeat(65)}/state`,
    'billing/customers/\u0000/state',
    '/billing/customers//state',
  ];
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
