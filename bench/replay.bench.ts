/**
 * `npm run bench:replay`: rebuilding every projection from a log of N events (default 100,000; set
 * BENCH_REPLAY_EVENTS, e.g. 1000000), beside the raw rate of reading the same rows with `pg` (the
 * ceiling): whole payloads, and the fold inputs the replay reads. The log is filled through the event
 * log's own append path. Also: the replay's memory (what it keeps alive, and its peak RSS growth), and the
 * projection lag at 1,000 webhooks/s in steady state and right after the replay.
 */
import pg from 'pg';
import { EventBus, ofType } from '@nestjs/cqrs';
import { EventLog } from '../src/event-log/event-log.js';
import { eventToAppend } from '../src/ingest/stripe-webhook.js';
import { BillingProjector } from '../src/projections/billing.projector.js';
import { CustomerStateChanged } from '../src/projections/messages.js';
import { ReplayService } from '../src/projections/replay.js';
import {
  customerUpdated,
  freshDatabase,
  machine,
  percentile,
  startPaywire,
  subscriptionEvent,
  table,
} from './support.js';
import { sendAtRate } from './http-load.js';

const EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);
const CUSTOMERS = Number(process.env.BENCH_REPLAY_CUSTOMERS ?? Math.max(100, EVENTS / 10));
const MiB = 2 ** 20;

/** Peak RSS growth over its value at the start, sampled every 10 ms. */
function rssGrowth(): { stop: () => number } {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.round((Math.max(peak, process.memoryUsage().rss) - base) / MiB);
    },
  };
}

async function fill(log: EventLog): Promise<void> {
  const base = 1_790_000_000;
  for (let start = 0; start < EVENTS; start += 1000) {
    const events = Array.from({ length: Math.min(1000, EVENTS - start) }, (_, k) => {
      const i = start + k;
      return subscriptionEvent(i, CUSTOMERS, base + Math.floor(i / CUSTOMERS));
    });
    await Promise.all(events.map((event) => log.appendEvent(eventToAppend(event, JSON.stringify(event)))));
  }
}

/** Reads one column of every row in pages of 2,000, as fast as `pg` can. */
async function rawRead(url: string, column: 'payload' | 'fold_input'): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  let position = 0;
  for (;;) {
    const { rows } = await client.query(
      `SELECT id, type, extract(epoch FROM created)::bigint AS created, position, ${column}
         FROM stripe_events WHERE position > $1 ORDER BY position LIMIT 2000`,
      [position],
    );
    if (rows.length === 0) break;
    position = Number(rows[rows.length - 1].position);
  }
  const seconds = (performance.now() - started) / 1000;
  await client.end();
  return seconds;
}

const LAG_RATE = 1000;

/**
 * Time from a webhook's acknowledgement to its customer's state being committed (the projector publishes
 * CustomerStateChanged on the event bus right after its transaction commits), at 1,000 webhooks/s for
 * `seconds`. Each round's events are newer than the last round's, so none of them is late.
 */
async function projectionLag(bus: EventBus, port: number, round: number, seconds: number) {
  const committedAt = new Map<string, number>();
  const subscription = bus.pipe(ofType(CustomerStateChanged)).subscribe(({ state }) => {
    const marker = state.email?.split('@')[0];
    if (marker) committedAt.set(marker, performance.timeOrigin + performance.now());
  });
  const { ackedAt } = await sendAtRate(port, LAG_RATE, seconds, (i) => {
    const marker = `lag${round}x${i}`;
    return { marker, body: customerUpdated(`cus_lag${i % 1000}`, marker, round * 100_000 + i) };
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

/** The peak of live memory (JS heap + buffers, measured after a forced GC every 250 ms) over its start. */
async function liveMemoryOf(work: () => Promise<unknown>): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:replay does)');
  const live = () => {
    gc();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.external;
  };
  const base = live();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, live())), 250);
  await work();
  clearInterval(timer);
  return Math.round((Math.max(peak, live()) - base) / MiB);
}

async function main() {
  const db = await freshDatabase('paywire_bench_replay');
  const { app, port } = await startPaywire(db.url);
  const fillStarted = performance.now();
  await fill(app.get(EventLog));
  // The live projector folds the filled log too; let it finish so that it does not compete with the runs.
  const projector = app.get(BillingProjector);
  while ((await projector.lag()).behind > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const bus = app.get(EventBus);
  // A warm-up round (JIT, connection pool, first rows of its customers) is not counted.
  await projectionLag(bus, port, 1, 2);
  const steadyLag = await projectionLag(bus, port, 2, 5);
  const rawPayloads = await rawRead(db.url, 'payload');
  const rawInputs = await rawRead(db.url, 'fold_input');
  const replays = app.get(ReplayService);
  const rss = rssGrowth();
  const started = performance.now();
  const job = await (await replays.start()).done;
  const seconds = (performance.now() - started) / 1000;
  const rssMiB = rss.stop();
  // Right after the swap the broker republishes every state (SPEC section 6) while webhooks keep coming.
  const afterReplayLag = await projectionLag(bus, port, 3, 5);
  // A second replay, slowed by a forced GC every 250 ms, measures the memory it keeps alive.
  const liveMiB = await liveMemoryOf(async () => (await replays.start()).done);
  await app.close();
  await db.drop();
  if (job.state !== 'done') throw new Error('replay failed');

  console.log(
    `\nMachine: ${machine()}; ${EVENTS} events for ${CUSTOMERS} customers (filled in ${fillSeconds.toFixed(1)} s)\n`,
  );
  const rate = (s: number) => Math.round(EVENTS / s);
  console.log(
    table(
      ['what', 'seconds', 'events/s', 'replay as share of it'],
      [
        [
          'raw read of whole payloads with pg (ceiling)',
          rawPayloads.toFixed(1),
          rate(rawPayloads),
          pct(rawPayloads, seconds),
        ],
        ['raw read of fold inputs with pg', rawInputs.toFixed(1), rate(rawInputs), pct(rawInputs, seconds)],
        ['Paywire replay (fold + write fresh tables + swap)', seconds.toFixed(1), rate(seconds), ''],
      ],
    ),
  );
  console.log(
    `\nreplay memory: live peak +${liveMiB} MiB (JS heap + buffers after forced GCs), peak RSS +${rssMiB} MiB`,
  );
  for (const [when, lag] of [
    ['in steady state (after a 2 s warm-up)', steadyLag],
    ['right after the replay, while every state is republished', afterReplayLag],
  ] as const) {
    console.log(
      `\nprojection lag at ${LAG_RATE} webhooks/s for 5 s ${when}: ` +
        `p50 ${lag.p50.toFixed(2)} ms, p99 ${lag.p99.toFixed(2)} ms, max ${lag.max.toFixed(2)} ms (${lag.count} states)`,
    );
  }
}

const pct = (raw: number, replay: number) => `${((raw / replay) * 100).toFixed(0)}%`;

await main();
