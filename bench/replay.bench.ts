/**
 * `npm run bench:replay`: rebuilding every projection from a log of N events (default 100,000; set
 * BENCH_REPLAY_EVENTS, e.g. 1000000), beside the raw rate of reading the same rows with `pg` (the
 * ceiling): whole payloads, and the fold inputs the replay reads. The log is filled through the event
 * log's own append path. The replay's memory is what it adds to the process: the peak of the JS heap in
 * use plus buffers outside it, sampled every 10 ms, over the same figure just before it starts (after a GC).
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
  sendAtRate,
  startPaywire,
  subscriptionEvent,
  table,
} from './support.js';

const EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);
const CUSTOMERS = Number(process.env.BENCH_REPLAY_CUSTOMERS ?? Math.max(100, EVENTS / 10));
const MiB = 2 ** 20;

/** Peak growth of memory in use (JS heap + buffers) and of RSS over their values at the start. */
function memoryGrowth(): { stop: () => { inUse: number; rss: number } } {
  (globalThis as { gc?: () => void }).gc?.();
  const inUse = () => {
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.external;
  };
  const base = { inUse: inUse(), rss: process.memoryUsage().rss };
  const peak = { ...base };
  const sample = () => {
    peak.inUse = Math.max(peak.inUse, inUse());
    peak.rss = Math.max(peak.rss, process.memoryUsage().rss);
  };
  const timer = setInterval(sample, 10);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return {
        inUse: Math.round((peak.inUse - base.inUse) / MiB),
        rss: Math.round((peak.rss - base.rss) / MiB),
      };
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
  await fill(app.get(EventLog));
  // The live projector folds the filled log too; let it finish so that it does not compete with the runs.
  const projector = app.get(BillingProjector);
  while ((await projector.lag()).behind > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const rawPayloads = await rawRead(db.url, 'payload');
  const rawInputs = await rawRead(db.url, 'fold_input');
  const memory = memoryGrowth();
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
    `\nreplay memory: peak +${replayMemory.inUse} MiB in use (JS heap + buffers), peak RSS +${replayMemory.rss} MiB`,
  );
  console.log(
    `\nprojection lag at ${LAG_RATE} webhooks/s for ${LAG_SECONDS} s (acknowledgement → state committed): ` +
      `p50 ${lag.p50.toFixed(2)} ms, p99 ${lag.p99.toFixed(2)} ms, max ${lag.max.toFixed(2)} ms (${lag.count} states)`,
  );
}

const pct = (raw: number, replay: number) => `${((raw / replay) * 100).toFixed(0)}%`;

await main();
