/**
 * `npm run soak -- --minutes 30`: a long run against the built server in its own process. `--rate`
 * signed webhooks a second (500), sent on schedule whatever the answers, spread over `--subscribers`
 * customers (1,000) that each have a WebSocket subscriber, and `--admin-rate` admin reads a second (20).
 * Half the webhooks set a customer's email to a unique marker, so the state message they cause is matched
 * to them. Every `--interval` seconds (60) a row: webhooks acknowledged and failed, ack p50/p99,
 * webhook-to-subscriber p50/p99 and pushes missing, admin reads and failures, and the server's RSS, heap,
 * event-loop delay p99 and projection-lag p99 (from its /metrics). At the end: the RSS and heap slopes
 * after warm-up, whether every acknowledged event is in the log, and with `--chart F` an SVG of the series.
 * It exits 1 when anything failed, so CI runs a minute of it. PostgreSQL is a cluster of its own with the
 * default settings (bench/own-postgres.ts), or the server at `--database-url`: a long run needs
 * autovacuum, which the machine's shared test server has off.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ownPostgres } from './own-postgres.js';
import { createScratchDatabase } from './scratch-database.js';
import { soakChart } from './soak-chart.js';
import { startSubscribers } from './subscribers.js';
import {
  BENCH_SECRETS,
  customerUpdated,
  machine,
  postSignedWebhook,
  percentile,
  spawnPaywire,
  subscriptionEvent,
  table,
} from './support.js';

const { values: options } = parseArgs({
  args: process.argv.slice(2),
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '500' },
    subscribers: { type: 'string', default: '1000' },
    'admin-rate': { type: 'string', default: '20' },
    interval: { type: 'string', default: '60' },
    chart: { type: 'string' },
    'database-url': { type: 'string' },
  },
});
const MINUTES = Number(options.minutes);
const RATE = Number(options.rate);
const SUBSCRIBERS = Number(options.subscribers);
const ADMIN_RATE = Number(options['admin-rate']);
const INTERVAL_MS = Number(options.interval) * 1000;
const DURATION_MS = MINUTES * 60_000;
// Memory grows while caches, pools and the JIT settle; the slope is taken after that.
const WARM_UP_MS = Math.min(5 * 60_000, DURATION_MS / 5);
// A state message later than this after its webhook counts as missing.
const PUSH_GRACE_MS = 10_000;
const CREATED_BASE = 1_790_000_000;

for (const [name, value] of Object.entries({ MINUTES, RATE, SUBSCRIBERS, ADMIN_RATE, INTERVAL_MS }))
  if (!(value > 0)) throw new Error(`--${name.toLowerCase()} must be a positive number`);

interface Interval {
  acks: number[];
  failedWebhooks: number;
  pushes: number[];
  missingPushes: number;
  adminReads: number[];
  failedAdminReads: number;
  disconnects: number;
  heapSamples: number[];
  eventLoopP99: number;
  rssMiB: number;
  lagBuckets?: Map<number, number>;
}

const intervals: Interval[] = [];
const now = () => performance.timeOrigin + performance.now();
let started = 0;
const intervalAt = (at: number): Interval => {
  // Before the run starts (subscribers connecting) everything counts in the first interval.
  const index = started === 0 ? 0 : Math.max(0, Math.floor((at - started) / INTERVAL_MS));
  while (intervals.length <= index)
    intervals.push({
      acks: [],
      failedWebhooks: 0,
      pushes: [],
      missingPushes: 0,
      adminReads: [],
      failedAdminReads: 0,
      disconnects: 0,
      heapSamples: [],
      eventLoopP99: 0,
      rssMiB: 0,
    });
  return intervals[index];
};

/** The numeric samples of a Prometheus text page, by metric name, with each sample's `le` if it has one. */
function parseMetrics(text: string): Map<string, Array<{ le?: number; value: number }>> {
  const metrics = new Map<string, Array<{ le?: number; value: number }>>();
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const le = /le="([^"]+)"/.exec(match[2] ?? '')?.[1];
    const samples = metrics.get(match[1]) ?? [];
    samples.push({
      le: le === '+Inf' ? Infinity : le === undefined ? undefined : Number(le),
      value: Number(match[3]),
    });
    metrics.set(match[1], samples);
  }
  return metrics;
}

/** The bucket bound under which 99% of the observations between two scrapes of a histogram fell. */
function bucketP99(before: Map<number, number> | undefined, after: Map<number, number>): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before?.get(Infinity) ?? 0);
  if (total <= 0) return NaN;
  for (const bound of bounds)
    if ((after.get(bound) ?? 0) - (before?.get(bound) ?? 0) >= 0.99 * total) return bound;
  return Infinity;
}

/** Least-squares slope of `values` against their times in hours. */
function slopePerHour(points: Array<{ hours: number; value: number }>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((sum, p) => sum + p.hours, 0) / n;
  const my = points.reduce((sum, p) => sum + p.value, 0) / n;
  const sxy = points.reduce((sum, p) => sum + (p.hours - mx) * (p.value - my), 0);
  const sxx = points.reduce((sum, p) => sum + (p.hours - mx) ** 2, 0);
  return sxy / sxx;
}

const cluster = options['database-url'] ? null : await ownPostgres();
const db = await createScratchDatabase(options['database-url'] ?? cluster!.url, 'paywire_soak');
const server = await spawnPaywire(db.url);
const customers = Array.from({ length: SUBSCRIBERS }, (_, i) => `cus_bench${String(i).padStart(7, '0')}`);
const pending = new Map<string, { sentAt: number; interval: Interval }>();
const subscribers = await startSubscribers(
  `ws://127.0.0.1:${server.port}/mqtt`,
  customers,
  'soak',
  (marker, at) => {
    const sent = pending.get(marker);
    if (!sent) return;
    sent.interval.pushes.push(at - sent.sentAt);
    pending.delete(marker);
  },
  () => intervalAt(now()).disconnects++,
);

// Stopped early (Ctrl-C), the run takes its server, subscribers and cluster with it.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    server.child.kill('SIGKILL');
    subscribers.child.kill('SIGKILL');
    void (cluster?.destroy() ?? Promise.resolve()).finally(() => process.exit(130));
  });

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const adminHeaders = { authorization: `Bearer ${BENCH_SECRETS.ADMIN_API_KEY}` };
/** An admin GET; resolves with the answer's status, 0 when there was none. */
function adminGet(path: string): Promise<number> {
  return new Promise((resolve) => {
    const outgoing = http.request(
      { host: '127.0.0.1', port: server.port, path, method: 'GET', agent, headers: adminHeaders },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    outgoing.on('error', () => resolve(0));
    outgoing.end();
  });
}

let sent = 0;
let acknowledged = 0;
/** Failed webhooks by status (0: no answer). */
const webhookFailures = new Map<number, number>();
function sendWebhook(i: number): void {
  const customer = customers[i % SUBSCRIBERS];
  // Alternate rounds over the customers: a marker, then a 4 KB subscription update, then a marker…
  const marked = Math.floor(i / SUBSCRIBERS) % 2 === 0;
  const marker = `soak${i}`;
  const body = marked
    ? customerUpdated(customer, marker, i)
    : JSON.stringify(subscriptionEvent(i, SUBSCRIBERS, CREATED_BASE + i));
  const sentAt = now();
  const interval = intervalAt(sentAt);
  if (marked) pending.set(marker, { sentAt, interval });
  sent++;
  void postSignedWebhook(server.port, body, agent).then((status) => {
    if (status === 200) {
      acknowledged++;
      interval.acks.push(now() - sentAt);
    } else {
      interval.failedWebhooks++;
      webhookFailures.set(status, (webhookFailures.get(status) ?? 0) + 1);
      pending.delete(marker);
    }
  });
}

const adminFailures: string[] = [];
/** One admin read: mostly a customer's state, sometimes a page of customers or a state as of a moment. */
function readAdmin(n: number): void {
  // A customer whose first webhook went out at least a second ago.
  const known = Math.min(SUBSCRIBERS, sent - RATE);
  const customer = customers[Math.floor(Math.random() * known)];
  const path =
    n % 10 === 0
      ? '/admin/customers?limit=50'
      : n % 10 === 5
        ? `/admin/customers/${customer}/state?asOf=${new Date().toISOString()}`
        : `/admin/customers/${customer}`;
  const sentAt = now();
  const interval = intervalAt(sentAt);
  void adminGet(path).then((status) => {
    if (status === 200) interval.adminReads.push(now() - sentAt);
    else {
      interval.failedAdminReads++;
      adminFailures.push(`${status} ${path.replace(/cus_\w+/, ':id')}`);
    }
  });
}

let firstLagBuckets: Map<number, number> | undefined;
async function scrape(): Promise<void> {
  const interval = intervalAt(now());
  const response = await fetch(`${server.url}/metrics`).catch(() => null);
  if (!response?.ok) return;
  const metrics = parseMetrics(await response.text());
  const value = (name: string) => metrics.get(name)?.[0]?.value ?? NaN;
  interval.heapSamples.push(value('paywire_nodejs_heap_size_used_bytes') / 2 ** 20);
  interval.eventLoopP99 = Math.max(
    interval.eventLoopP99,
    value('paywire_nodejs_eventloop_lag_p99_seconds') * 1000,
  );
  interval.rssMiB = server.rssMiB();
  const buckets = new Map(
    (metrics.get('paywire_projection_lag_seconds_bucket') ?? []).map((sample) => [sample.le!, sample.value]),
  );
  interval.lagBuckets = buckets;
  firstLagBuckets ??= buckets;
}

console.log(
  `soak: ${MINUTES} min, ${RATE} webhooks/s, ${SUBSCRIBERS} subscribers (connected in ${subscribers.seconds.toFixed(1)} s), ${ADMIN_RATE} admin reads/s`,
);
started = now();
await scrape();
const scraper = setInterval(() => void scrape(), 5000);
let reported = 0;
const reporter = setInterval(() => {
  const current = Math.floor((now() - started) / INTERVAL_MS);
  for (; reported < Math.min(current, intervals.length); reported++)
    console.log(`interval ${reported + 1}: ${JSON.stringify(row(reported))}`);
}, INTERVAL_MS / 4);
let adminSent = 0;
while (now() - started < DURATION_MS) {
  const elapsed = now() - started;
  const dueWebhooks = Math.floor((elapsed / 1000) * RATE);
  while (sent < dueWebhooks) sendWebhook(sent);
  // Admin reads begin after two seconds, when the first customers have states to read.
  const dueAdmin = Math.floor((Math.max(0, elapsed - 2000) / 1000) * ADMIN_RATE);
  while (adminSent < dueAdmin) readAdmin(adminSent++);
  await new Promise((resolve) => setTimeout(resolve, 5));
}
// The last answers and state messages.
const drainUntil = Date.now() + PUSH_GRACE_MS;
while (Date.now() < drainUntil && (pending.size > 0 || acknowledged + failures() < sent))
  await new Promise((resolve) => setTimeout(resolve, 50));
clearInterval(scraper);
clearInterval(reporter);
for (const { interval } of pending.values()) interval.missingPushes++;
// The interval that held only the drain is not part of the run.
while (intervals.length > Math.ceil(DURATION_MS / INTERVAL_MS)) intervals.pop();

function failures(): number {
  return intervals.reduce((sum, interval) => sum + interval.failedWebhooks, 0);
}

function row(index: number) {
  const interval = intervals[index];
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
  const acks = sorted(interval.acks);
  const pushes = sorted(interval.pushes);
  const heap = sorted(interval.heapSamples);
  // The projection-lag histogram between the last scrape of the previous interval and this one's last.
  const previous = index === 0 ? firstLagBuckets : intervals[index - 1].lagBuckets;
  return {
    minute: ((index + 1) * INTERVAL_MS) / 60_000,
    webhooksPerSecond: acks.length / (INTERVAL_MS / 1000),
    failedWebhooks: interval.failedWebhooks,
    ackP50: percentile(acks, 50),
    ackP99: percentile(acks, 99),
    pushP50: percentile(pushes, 50),
    pushP99: percentile(pushes, 99),
    missingPushes: interval.missingPushes,
    adminReadsPerSecond: interval.adminReads.length / (INTERVAL_MS / 1000),
    adminP99: percentile(sorted(interval.adminReads), 99),
    failedAdminReads: interval.failedAdminReads,
    disconnects: interval.disconnects,
    rssMiB: interval.rssMiB,
    heapMiB: percentile(heap, 50),
    eventLoopP99: interval.eventLoopP99,
    projectionLagP99: interval.lagBuckets ? bucketP99(previous, interval.lagBuckets) * 1000 : NaN,
  };
}

const rows = intervals.map((_, index) => row(index));
const client = new pg.Client({ connectionString: db.url });
await client.connect();
const [{ count: stored }] = (await client.query<{ count: string }>(`SELECT count(*) FROM stripe_events`))
  .rows;
await client.end();
await subscribers.stop();
const serverSurvived = server.child.exitCode === null && server.child.signalCode === null;
await server.stop();
agent.destroy();
await db.drop();
await cluster?.destroy();

const warm = rows.filter((r) => r.minute * 60_000 > WARM_UP_MS);
const rssSlope = slopePerHour(warm.map((r) => ({ hours: r.minute / 60, value: r.rssMiB })));
const heapSlope = slopePerHour(warm.map((r) => ({ hours: r.minute / 60, value: r.heapMiB })));
const total = (key: 'failedWebhooks' | 'missingPushes' | 'failedAdminReads' | 'disconnects') =>
  rows.reduce((sum, r) => sum + r[key], 0);
const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

console.log(
  `\n${machine()}; the built server in its own process; PostgreSQL ${cluster ? 'of its own, default settings' : `at ${new URL(db.url).host}`}; ${MINUTES} min at ${RATE} webhooks/s, ${SUBSCRIBERS} WebSocket subscribers, ${ADMIN_RATE} admin reads/s\n`,
);
console.log(
  table(
    [
      'minute',
      'webhooks/s',
      'ack p50 / p99 ms',
      'push p50 / p99 ms',
      'projection lag p99 ms (bucket)',
      'event loop p99 ms',
      'admin p99 ms',
      'RSS MiB',
      'heap MiB',
      'errors',
    ],
    rows.map((r) => [
      fixed(r.minute, INTERVAL_MS % 60_000 ? 2 : 0),
      fixed(r.webhooksPerSecond, 0),
      `${fixed(r.ackP50, 2)} / ${fixed(r.ackP99)}`,
      `${fixed(r.pushP50, 2)} / ${fixed(r.pushP99)}`,
      fixed(r.projectionLagP99, 1),
      fixed(r.eventLoopP99),
      fixed(r.adminP99),
      r.rssMiB,
      fixed(r.heapMiB),
      r.failedWebhooks + r.missingPushes + r.failedAdminReads + r.disconnects,
    ]),
  ),
);
const errors =
  total('failedWebhooks') + total('missingPushes') + total('failedAdminReads') + total('disconnects');
const lost = acknowledged - Number(stored);
console.log(
  `\nWebhooks sent ${sent}, acknowledged ${acknowledged}, failed ${total('failedWebhooks')}; in the log ${stored} ` +
    `(${lost === 0 ? 'every acknowledged event' : `${lost} acknowledged events missing`}); pushes missing ${total('missingPushes')}; ` +
    `admin reads failed ${total('failedAdminReads')}; subscribers disconnected ${total('disconnects')}; ` +
    `server ${serverSurvived ? 'survived' : 'died'}.`,
);
console.log(
  `After ${WARM_UP_MS / 60_000} min of warm-up: RSS slope ${fixed(rssSlope)} MiB/h, heap slope ${fixed(heapSlope)} MiB/h.`,
);
if (webhookFailures.size > 0)
  console.log(
    `Failed webhooks by status (0: no answer): ${JSON.stringify(Object.fromEntries(webhookFailures))}`,
  );
if (adminFailures.length > 0) console.log(`Failed admin reads: ${adminFailures.slice(0, 10).join(', ')}`);
if (options.chart) {
  writeFileSync(
    options.chart,
    soakChart(
      rows,
      `Soak: ${MINUTES} min, ${RATE} webhooks/s, ${SUBSCRIBERS} subscribers, ${ADMIN_RATE} admin reads/s`,
    ),
  );
  console.log(`Chart: ${options.chart}`);
}
if (errors > 0 || lost !== 0 || !serverSurvived) process.exit(1);
