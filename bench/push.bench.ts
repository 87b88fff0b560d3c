/**
 * `npm run bench:push`: time from a webhook request to the state message at a subscriber (p50, p99,
 * max) at 100 and 1,000 events/s with 1,000 WebSocket subscribers, on one instance and, back to back,
 * across two on the same database (subscribers on Q, in this process; webhooks to P, a process of its own,
 * which projects, then to Q, which does not);
 * then a reconnect storm: 10,000 clients connecting to one instance at once, each subscribing to a
 * customer whose state is stored, so each needs a retained read — the time until every client has its
 * state, and the instance's memory per client. The subscribers run in a child process; the server's
 * resident memory is read in this process before and after they connect. Each webhook sets a customer's
 * email to a unique marker, so a message is matched to the request that caused it. Where the time goes is
 * printed beside it: the acknowledgement (stored), and the state handed to the subscribers' instance's
 * broker (projected, committed and read from the feed), each as a p50 from the request.
 */
import { EventBus } from '@nestjs/cqrs';
import { CustomerStateChanged } from '../src/projections/messages.js';
import { startSubscribers, type Subscribers } from './subscribers.js';
import {
  customerUpdated,
  freshDatabase,
  machine,
  percentile,
  seedCustomerStates,
  spawnPaywire,
  startPaywire,
  table,
} from './support.js';
import { sendAtRate } from './http-load.js';

const SUBSCRIBERS = Number(process.env.BENCH_PUSH_SUBSCRIBERS ?? 1000);
const CAPACITY = Number(process.env.BENCH_PUSH_CAPACITY ?? 10_000);
const SECONDS = Number(process.env.BENCH_PUSH_SECONDS ?? 5);
const POLL_INTERVAL_MS = 2000;

/** The subscribers and, by marker, when each one's state message arrived. */
async function startClients(
  url: string,
  customers: string[],
  prefix: string,
): Promise<Subscribers & { arrivals: Map<string, number> }> {
  const arrivals = new Map<string, number>();
  const subscribers = await startSubscribers(url, customers, prefix, (marker, at) =>
    arrivals.set(marker, at),
  );
  return Object.assign(subscribers, { arrivals });
}

/** Sends at 100 and 1,000 events/s to `port`; the subscribers' `arrivals` give each webhook's latency. */
async function measure(
  label: string,
  port: number,
  customers: string[],
  arrivals: Map<string, number>,
  bus: EventBus,
  rows: Array<Array<string | number>>,
  seq: { next: number },
): Promise<void> {
  const published = new Map<string, number>();
  const listening = bus.subscribe((event) => {
    const email = event instanceof CustomerStateChanged ? event.state.email : null;
    if (email) published.set(email.split('@')[0], performance.timeOrigin + performance.now());
  });
  const p50From = (sent: Map<string, number>, at: Map<string, number>) =>
    percentile(
      [...sent]
        .map(([marker, t]) => (at.get(marker) ?? NaN) - t)
        .filter(Number.isFinite)
        .sort((a, b) => a - b),
      50,
    ).toFixed(2);
  for (const rate of [100, 1000]) {
    const total = rate * SECONDS;
    const { sentAt: sent, ackedAt } = await sendAtRate(port, rate, SECONDS, (i) => {
      const marker = `${label.replace(/\W/g, '')}r${rate}n${i}`;
      return { marker, body: customerUpdated(customers[i % customers.length], marker, seq.next++) };
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const latencies = [...sent].map(([marker, at]) => (arrivals.get(marker) ?? NaN) - at);
    const delivered = latencies.filter((latency) => Number.isFinite(latency)).sort((a, b) => a - b);
    rows.push([
      `${label}: ${rate} events/s, ${SUBSCRIBERS} subscribers`,
      `${delivered.length}/${total}`,
      p50From(sent, ackedAt),
      p50From(sent, published),
      percentile(delivered, 50).toFixed(2),
      percentile(delivered, 99).toFixed(2),
      delivered[delivered.length - 1].toFixed(2),
    ]);
  }
  listening.unsubscribe();
}

async function main() {
  const db = await freshDatabase('paywire_bench_push');
  const { app, port } = await startPaywire(db.url);
  const url = `ws://127.0.0.1:${port}/mqtt`;

  const customers = Array.from({ length: SUBSCRIBERS }, (_, i) => `cus_push${String(i).padStart(6, '0')}`);
  const rows: Array<Array<string | number>> = [];
  const seq = { next: 0 };
  const one = await startClients(url, customers, 'sub');
  await measure('one instance', port, customers, one.arrivals, app.get(EventBus), rows, seq);
  await one.stop();

  // Two instances, each in a process of its own as they are deployed: P, started first, projects; Q, in
  // this process (so the benchmark sees when a state reaches its broker), serves the subscribers. The
  // webhooks go to P, then to Q (behind a load balancer, half of them): Q announces each append to P, P
  // projects it, and Q's feed reads it after P's notification. Sharing one process, the two instances'
  // work delayed each other, which no deployment has.
  await app.close();
  const p = await spawnPaywire(db.url);
  const q = await startPaywire(db.url);
  const ready = (await (await fetch(`${p.url}/health/ready`)).json()) as {
    projector: { projecting: boolean };
  };
  if (!ready.projector.projecting) throw new Error('P does not project');
  const two = await startClients(`ws://127.0.0.1:${q.port}/mqtt`, customers, 'onq');
  await measure('two instances', p.port, customers, two.arrivals, q.app.get(EventBus), rows, seq);
  await measure(
    'two instances, webhooks to Q',
    q.port,
    customers,
    two.arrivals,
    q.app.get(EventBus),
    rows,
    seq,
  );
  await two.stop();
  await p.stop();
  const pushP50 = Number(rows[0][4]);
  await new Promise((resolve) => setTimeout(resolve, 1000));

  // A reconnect storm: every client needs its stored state (a retained read) on subscribing.
  const idle = Array.from({ length: CAPACITY }, (_, i) => `cus_idle${String(i + 1).padStart(7, '0')}`);
  await seedCustomerStates(db.url, 'cus_idle', CAPACITY);
  global.gc?.();
  const before = process.memoryUsage().rss;
  const stormStarted = performance.timeOrigin + performance.now();
  const capacity = await startClients(`ws://127.0.0.1:${q.port}/mqtt`, idle, 'idle');
  const retained = capacity.arrivals;
  const deadline = Date.now() + 60_000;
  while (retained.size < CAPACITY && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  const stormSeconds = (Math.max(...retained.values()) - stormStarted) / 1000;
  global.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = process.memoryUsage().rss;
  await capacity.stop();

  await q.app.close();
  await db.drop();

  console.log(
    `\nMachine: ${machine()}; ${SECONDS} s per rate; latency from the webhook request to the MQTT message (ms)\n`,
  );
  console.log(
    table(['load', 'delivered', 'acked p50 ms', 'to the broker p50 ms', 'p50 ms', 'p99 ms', 'max ms'], rows),
  );
  const pollingMean = POLL_INTERVAL_MS / 2;
  console.log(
    `\nPolling every ${POLL_INTERVAL_MS / 1000} s learns of a change after ${pollingMean} ms on average (plus a request): ` +
      `${(pollingMean / pushP50).toFixed(0)}× the push p50 at 100 events/s.`,
  );
  console.log(
    `\nReconnect storm: ${CAPACITY} clients connected and subscribed in ${capacity.seconds.toFixed(1)} s; ` +
      `${retained.size} of them had their retained state ${stormSeconds.toFixed(1)} s after the first connected.`,
  );
  console.log(
    `\nCapacity: ${CAPACITY} WebSocket clients held; server RSS ` +
      `${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB, ` +
      `${((after - before) / CAPACITY / 1024).toFixed(1)} KiB per client.`,
  );
}

await main();
