/**
 * `npm run bench:replay`: rebuilding every projection from a log of N events (default 100,000; set
 * BENCH_REPLAY_EVENTS, e.g. 1000000), beside the raw rate of reading the same rows with `pg` (the
 * ceiling), with peak resident memory sampled during each. The log is filled through the same
 * `paywire_append_events` function the webhook uses, in batches of 1,000.
 */
import pg from 'pg';
import { ReplayService } from '../src/projections/replay.js';
import { EventBus, ofType } from '@nestjs/cqrs';
import { BillingProjector } from '../src/projections/billing.projector.js';
import { CustomerStateChanged } from '../src/projections/messages.js';
import {
  customerUpdated,
  freshDatabase,
  machine,
  percentile,
  sendAtRate,
  startPaywire,
  subscriptionEvent,
  table,
} from './support.js';

const EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);
const CUSTOMERS = Number(process.env.BENCH_REPLAY_CUSTOMERS ?? Math.max(100, EVENTS / 10));

function peakMemory(): { stop: () => number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.round(Math.max(peak, process.memoryUsage().rss) / 2 ** 20);
    },
  };
}

async function fill(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const base = 1_790_000_000;
  for (let start = 0; start < EVENTS; start += 1000) {
    const events = Array.from({ length: Math.min(1000, EVENTS - start) }, (_, k) => {
      const i = start + k;
      return subscriptionEvent(i, CUSTOMERS, base + Math.floor(i / CUSTOMERS));
    });
    await pool.query(
      `SELECT count(*) FROM paywire_append_events($1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::text[],
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`,
      [
        events.map((e) => e.id),
        events.map((e) => e.type),
        events.map((e) => e.created),
        events.map(() => false),
        events.map((e) => e.api_version),
        events.map(() => null),
        events.map((e) => (e.data.object as { customer: string }).customer),
        events.map((e) => (e.data.object as { id: string }).id),
        events.map(() => ''),
        events.map((e) => JSON.stringify(e)),
      ],
    );
  }
  await pool.end();
}

async function rawRead(url: string): Promise<{ seconds: number; memory: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const memory = peakMemory();
  const started = performance.now();
  let position = 0;
  for (;;) {
    const { rows } = await client.query(
      `SELECT id, type, extract(epoch FROM created)::bigint AS created, position, payload
         FROM stripe_events WHERE position > $1 ORDER BY position LIMIT 2000`,
      [position],
    );
    if (rows.length === 0) break;
    position = Number(rows[rows.length - 1].position);
  }
  const seconds = (performance.now() - started) / 1000;
  await client.end();
  return { seconds, memory: memory.stop() };
}

const LAG_RATE = 1000;
const LAG_SECONDS = 5;

/**
 * Time from a webhook's acknowledgement to its customer's state being committed (the projector publishes
 * CustomerStateChanged on the event bus right after its transaction commits), at 1,000 webhooks/s.
 */
async function projectionLag(bus: EventBus, port: number) {
  const committedAt = new Map<string, number>();
  const subscription = bus.pipe(ofType(CustomerStateChanged)).subscribe(({ state }) => {
    const marker = state.email?.split('@')[0];
    if (marker) committedAt.set(marker, performance.timeOrigin + performance.now());
  });
  const { ackedAt } = await sendAtRate(port, LAG_RATE, LAG_SECONDS, (i) => {
    const marker = `lag${i}`;
    return { marker, body: customerUpdated(`cus_lag${i % 1000}`, marker, 1_000_000 + i) };
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  subscription.unsubscribe();
  // A state can carry a later marker of the same customer when both fell into one batch; only markers
  // whose own state was committed are counted.
  const lags = [...ackedAt]
    .map(([marker, at]) => (committedAt.get(marker) ?? NaN) - at)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  return {
    p50: percentile(lags, 50),
    p99: percentile(lags, 99),
    max: lags[lags.length - 1],
    count: lags.length,
  };
}

async function main() {
  const db = await freshDatabase('paywire_bench_replay');
  const { app, port } = await startPaywire(db.url);
  const fillStarted = performance.now();
  await fill(db.url);
  // The live projector folds the filled log too; let it finish so that it does not compete with the runs.
  const projector = app.get(BillingProjector);
  while ((await projector.lag()).behind > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const raw = await rawRead(db.url);
  const memory = peakMemory();
  const started = performance.now();
  const job = await app.get(ReplayService).start().done;
  const seconds = (performance.now() - started) / 1000;
  const replayMemory = memory.stop();
  const lag = await projectionLag(app.get(EventBus), port);
  await app.close();
  await db.drop();
  if (job.state !== 'done') throw new Error('replay failed');

  console.log(
    `\nMachine: ${machine()}; ${EVENTS} events for ${CUSTOMERS} customers (filled in ${fillSeconds.toFixed(1)} s)\n`,
  );
  console.log(
    table(
      ['what', 'seconds', 'events/s', 'peak RSS MiB'],
      [
        [
          'raw read of the log with pg (ceiling)',
          raw.seconds.toFixed(1),
          Math.round(EVENTS / raw.seconds),
          raw.memory,
        ],
        [
          'Paywire replay (fold + write fresh tables + swap)',
          seconds.toFixed(1),
          Math.round(EVENTS / seconds),
          replayMemory,
        ],
      ],
    ),
  );
  console.log(`\nreplay rate = ${((raw.seconds / seconds) * 100).toFixed(0)}% of the raw read rate`);
  console.log(
    `\nprojection lag at ${LAG_RATE} webhooks/s for ${LAG_SECONDS} s (acknowledgement → state committed): ` +
      `p50 ${lag.p50.toFixed(2)} ms, p99 ${lag.p99.toFixed(2)} ms, max ${lag.max.toFixed(2)} ms (${lag.count} states)`,
  );
}

await main();
