/**
 * The MQTT half of `npm run bench:fuzz`: against the built server in its own process, 20,000 malformed
 * connections (BENCH_FUZZ_MQTT_CONNECTIONS; bench/mqtt-cases.ts, half over TCP, half over WebSocket, 16
 * at a time), 100 valid clients each trying the 12 topic tricks, 50 clients flooding SUBSCRIBE and 50
 * client ids flooding CONNECT, while a watcher subscribed throughout gets a state change every 100 ms.
 * Figures: whether the broker closed each malformed connection and how fast, tricks granted, flooders
 * disconnected and turned away, 200 connections left half-open until the connect timeout closes them,
 * the watcher's states delivered and their latency, the process's survival and its memory before and after.
 */
import http from 'node:http';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { MqttTokens } from '../src/realtime/mqtt-tokens.js';
import { customerStateTopic } from '../src/realtime/topics.js';
import { freePort } from './free-port.js';
import { connectPacket, malformed, overTcp, overWebSocket, topicTricks } from './mqtt-cases.js';
import {
  BENCH_SECRETS,
  customerUpdated,
  freshDatabase,
  machine,
  percentile,
  postSignedWebhook,
  spawnPaywire,
  table,
} from './support.js';

const CONNECTIONS = Number(process.env.BENCH_FUZZ_MQTT_CONNECTIONS ?? 20_000);
const CONCURRENCY = 16;
const TRICKSTERS = 100;
const FLOODERS = 50;

const db = await freshDatabase('paywire_bench_mqtt_fuzz');
const tcpPort = await freePort();
const server = await spawnPaywire(db.url, { MQTT_TCP_PORT: String(tcpPort) });
const wsUrl = `ws://127.0.0.1:${server.port}/mqtt`;
const tokens = new MqttTokens(BENCH_SECRETS.MQTT_TOKEN_SECRET);
const rssBefore = server.rssMiB();

function connect(customer: string, clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    void tokens.mint({ customerId: customer, ttlSeconds: 3600 }).then(({ token }) => {
      const client = mqtt.connect(wsUrl, {
        protocolVersion: 4,
        clientId,
        username: 'bench',
        password: token,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
      client.once('connect', () => resolve(client));
      client.once('error', (error) => {
        client.end(true);
        reject(error);
      });
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });
  });
}

function suback(client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve) =>
    client.subscribe(topic, { qos: 1 }, (error, granted) =>
      resolve(error ? 128 : (granted?.[0]?.qos ?? 128)),
    ),
  );
}

// The watcher, and a state change for its customer every 100 ms, each carrying a marker.
const watched = 'cus_fuzzwatch';
const watcher = await connect(watched, `${watched}:watcher`);
const arrivals = new Map<string, number>();
watcher.on('message', (_topic, payload) => {
  const marker = (JSON.parse(payload.toString()) as { email?: string }).email?.split('@')[0];
  if (marker) arrivals.set(marker, performance.now());
});
await suback(watcher, customerStateTopic(watched));
const sentAt = new Map<string, number>();
const changeAgent = new http.Agent({ keepAlive: true });
let changes = 0;
const changer = setInterval(() => {
  const marker = `fuzzwatch${changes}`;
  const body = customerUpdated(watched, marker, changes++);
  sentAt.set(marker, performance.now());
  void postSignedWebhook(server.port, body, changeAgent);
}, 100);

// Malformed connections.
const closeTimes: number[] = [];
let leftOpen = 0;
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < CONNECTIONS) {
      const tcp = next++ % 2 === 0;
      const [bytes] = fc.sample(malformed, 1);
      const started = performance.now();
      const outcome = await (tcp ? overTcp(tcpPort, bytes, 250) : overWebSocket(wsUrl, bytes, 250));
      if (outcome === 'closed') closeTimes.push(performance.now() - started);
      else leftOpen++;
    }
  }),
);

// Topic tricks from valid clients: each must be refused (SUBACK 0x80) on a connection that stays.
let granted = 0;
let tricksTried = 0;
let tricksterConnectionsKept = 0;
for (let i = 0; i < TRICKSTERS; i++) {
  const customer = `cus_trick${i}`;
  const client = await connect(customer, `${customer}:t`);
  for (const topic of topicTricks(watched)) {
    tricksTried++;
    if ((await suback(client, topic)) !== 128) granted++;
  }
  if (client.connected) tricksterConnectionsKept++;
  client.end(true);
}

// SUBSCRIBE floods: 200 subscriptions as fast as the socket takes them.
let subscribeFloodersDisconnected = 0;
await Promise.all(
  Array.from({ length: FLOODERS }, async (_, i) => {
    const customer = `cus_subflood${i}`;
    const client = await connect(customer, `${customer}:f`);
    const closed = new Promise<boolean>((resolve) => {
      client.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 10_000);
    });
    for (let n = 0; n < 200 && client.connected; n++)
      client.subscribe(customerStateTopic(customer), { qos: 1 });
    if (await closed) subscribeFloodersDisconnected++;
    client.end(true);
  }),
);

// CONNECT floods: 40 connections in a row under one client id.
let connectFloodersTurnedAway = 0;
let floodConnectsAccepted = 0;
await Promise.all(
  Array.from({ length: FLOODERS }, async (_, i) => {
    const customer = `cus_connflood${i}`;
    let refused = 0;
    for (let n = 0; n < 40; n++) {
      try {
        const client = await connect(customer, `${customer}:c`);
        floodConnectsAccepted++;
        client.end(true);
      } catch {
        refused++;
      }
    }
    if (refused > 0) connectFloodersTurnedAway++;
  }),
);

// Connections that send a CONNECT cut short and then nothing: the broker's connect timeout must close them.
const HALF_OPEN = 200;
const halfOpenStarted = performance.now();
const halfOpen = await Promise.all(
  Array.from({ length: HALF_OPEN }, (_, i) => {
    const [bytes] = fc.sample(connectPacket, 1);
    const cut = bytes.subarray(0, Math.max(2, Math.floor(bytes.length / 2)));
    return i % 2 === 0 ? overTcp(tcpPort, cut, 30_000) : overWebSocket(wsUrl, cut, 30_000);
  }),
);
const halfOpenClosed = halfOpen.filter((outcome) => outcome === 'closed').length;
const halfOpenSeconds = (performance.now() - halfOpenStarted) / 1000;

clearInterval(changer);
changeAgent.destroy();
const lastMarker = `fuzzwatch${changes - 1}`;
for (let waited = 0; !arrivals.has(lastMarker) && waited < 5000; waited += 50)
  await new Promise((resolve) => setTimeout(resolve, 50));
// A marker missing while a later one arrived was folded into one state with it (one projector batch):
// the watcher still holds the latest state. One with no later arrival would be lost.
const markers = [...sentAt.keys()];
const lastArrived = markers.reduce((last, marker, i) => (arrivals.has(marker) ? i : last), -1);
const coalesced = markers.filter((marker, i) => !arrivals.has(marker) && i < lastArrived).length;
const lost = markers.filter((marker, i) => !arrivals.has(marker) && i > lastArrived).length;
const pushLatencies = [...sentAt]
  .map(([marker, at]) => (arrivals.get(marker) ?? NaN) - at)
  .filter(Number.isFinite)
  .sort((a, b) => a - b);
const watcherConnected = watcher.connected;
watcher.end(true);
const live = await fetch(`${server.url}/health/live`).then(
  (response) => response.status,
  () => 0,
);
const survived = server.child.exitCode === null && server.child.signalCode === null && live === 200;
const rssAfter = server.rssMiB();
await server.stop();
await db.drop();

closeTimes.sort((a, b) => a - b);
console.log(
  `\n${machine()}; the built server in its own process, ${CONCURRENCY} malformed connections at a time\n`,
);
console.log(
  table(
    ['what', 'figure'],
    [
      ['malformed connections (TCP and WebSocket)', CONNECTIONS],
      ['closed by the broker / still open after 250 ms', `${closeTimes.length} / ${leftOpen}`],
      [
        'time to close p50 / p99 ms',
        `${percentile(closeTimes, 50).toFixed(2)} / ${percentile(closeTimes, 99).toFixed(2)}`,
      ],
      ['topic tricks granted', `${granted} of ${tricksTried}`],
      ['trick connections kept open', `${tricksterConnectionsKept} of ${TRICKSTERS}`],
      ['SUBSCRIBE flooders disconnected', `${subscribeFloodersDisconnected} of ${FLOODERS}`],
      [
        'CONNECT flooders turned away (connections let in)',
        `${connectFloodersTurnedAway} of ${FLOODERS} (${floodConnectsAccepted} of ${FLOODERS * 40})`,
      ],
      [
        "watcher's state changes delivered, p50 / p99 ms",
        `${pushLatencies.length} of ${changes}, ${percentile(pushLatencies, 50).toFixed(1)} / ${percentile(pushLatencies, 99).toFixed(1)}`,
      ],
      ['… folded into a later state (same projector batch) / lost', `${coalesced} / ${lost}`],
      [
        'half-open connections (CONNECT cut short) closed by the connect timeout',
        `${halfOpenClosed} of ${HALF_OPEN}, all within ${halfOpenSeconds.toFixed(1)} s`,
      ],
      ['watcher still connected', watcherConnected ? 'yes' : 'no'],
      ['process survived', survived ? 'yes' : 'no'],
      ['server RSS before → after MiB', `${rssBefore} → ${rssAfter}`],
    ],
  ),
);
