/**
 * `npm run bench:push`: time from a webhook request to the state message at a subscriber (p50, p99,
 * max) at 100 and 1,000 events/s with 1,000 WebSocket subscribers, then how many idle WebSocket clients
 * one instance holds and its memory per client. The subscribers run in a child process; the server's
 * resident memory is read in this process before and after they connect. Each webhook sets a customer's
 * email to a unique marker, so a message is matched to the request that caused it.
 */
import { fork } from 'node:child_process';
import { MqttTokens } from '../src/realtime/mqtt-tokens.js';
import { customerStateTopic } from '../src/realtime/topics.js';
import {
  BENCH_SECRETS,
  customerUpdated,
  freshDatabase,
  machine,
  percentile,
  sendAtRate,
  startPaywire,
  table,
} from './support.js';

const TOKEN_SECRET = BENCH_SECRETS.MQTT_TOKEN_SECRET;
const SUBSCRIBERS = Number(process.env.BENCH_PUSH_SUBSCRIBERS ?? 1000);
const CAPACITY = Number(process.env.BENCH_PUSH_CAPACITY ?? 10_000);
const SECONDS = Number(process.env.BENCH_PUSH_SECONDS ?? 5);
const POLL_INTERVAL_MS = 2000;

type Child = ReturnType<typeof fork>;

async function startClients(
  url: string,
  customers: string[],
  prefix: string,
): Promise<{ child: Child; seconds: number }> {
  const tokens = new MqttTokens(TOKEN_SECRET);
  const entries = await Promise.all(
    customers.map(async (customer, i) => ({
      token: (await tokens.mint({ customerId: customer, ttlSeconds: 3600 })).token,
      clientId: `${customer}:${prefix}${i}`,
      topic: customerStateTopic(customer),
    })),
  );
  const child = fork(new URL('./push-clients.js', import.meta.url), { stdio: 'inherit' });
  const seconds = await new Promise<number>((resolve) => {
    child.on('message', (message: { kind: string; seconds?: number }) => {
      if (message.kind === 'ready') resolve(message.seconds!);
    });
    child.send({ kind: 'start', start: { url, tokens: entries, concurrency: 50 } });
  });
  return { child, seconds };
}

async function main() {
  const db = await freshDatabase('paywire_bench_push');
  const { app, port } = await startPaywire(db.url);
  const url = `ws://127.0.0.1:${port}/mqtt`;

  const customers = Array.from({ length: SUBSCRIBERS }, (_, i) => `cus_push${String(i).padStart(6, '0')}`);
  const { child } = await startClients(url, customers, 'sub');
  const arrivals = new Map<string, number>();
  child.on('message', (message: { kind: string; email?: string; at?: number }) => {
    if (message.kind === 'message') arrivals.set(message.email!.split('@')[0], message.at!);
  });

  const rows: Array<Array<string | number>> = [];
  let seq = 0;
  for (const rate of [100, 1000]) {
    const total = rate * SECONDS;
    const { sentAt: sent } = await sendAtRate(port, rate, SECONDS, (i) => {
      const marker = `r${rate}n${i}`;
      return { marker, body: customerUpdated(customers[i % customers.length], marker, seq++) };
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const latencies = [...sent].map(([marker, at]) => (arrivals.get(marker) ?? NaN) - at);
    const delivered = latencies.filter((latency) => Number.isFinite(latency)).sort((a, b) => a - b);
    rows.push([
      `${rate} events/s, ${SUBSCRIBERS} subscribers`,
      `${delivered.length}/${total}`,
      percentile(delivered, 50).toFixed(2),
      percentile(delivered, 99).toFixed(2),
      delivered[delivered.length - 1].toFixed(2),
    ]);
  }
  const pushP50 = Number(rows[0][2]);
  child.send({ kind: 'stop' });
  await new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 1000));

  // Capacity: idle clients, each subscribed to its own (empty) topic.
  global.gc?.();
  const before = process.memoryUsage().rss;
  const idle = Array.from({ length: CAPACITY }, (_, i) => `cus_idle${String(i).padStart(6, '0')}`);
  const capacity = await startClients(url, idle, 'idle');
  global.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = process.memoryUsage().rss;
  capacity.child.send({ kind: 'stop' });
  await new Promise((resolve) => capacity.child.once('exit', resolve));

  await app.close();
  await db.drop();

  console.log(
    `\nMachine: ${machine()}; ${SECONDS} s per rate; latency from the webhook request to the MQTT message (ms)\n`,
  );
  console.log(table(['load', 'delivered', 'p50 ms', 'p99 ms', 'max ms'], rows));
  const pollingMean = POLL_INTERVAL_MS / 2;
  console.log(
    `\nPolling every ${POLL_INTERVAL_MS / 1000} s learns of a change after ${pollingMean} ms on average (plus a request): ` +
      `${(pollingMean / pushP50).toFixed(0)}× the push p50 at 100 events/s.`,
  );
  console.log(
    `\nCapacity: ${CAPACITY} idle WebSocket clients connected in ${capacity.seconds.toFixed(1)} s; server RSS ` +
      `${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB, ` +
      `${((after - before) / CAPACITY / 1024).toFixed(1)} KiB per client.`,
  );
}

await main();
