/**
 * `npm run bench:replay`: rebuilding every projection from a log of N events (default 100,000; set
 * BENCH_REPLAY_EVENTS, e.g. 1000000), beside the raw rate of reading the same rows with `pg` (the
 * ceiling), with peak resident memory sampled during each. The log is filled through the same
 * `paywire_append_events` function the webhook uses, in batches of 1,000.
 */
import pg from 'pg';
import { ReplayService } from '../src/projections/replay.js';
import { freshDatabase, machine, startPaywire, subscriptionEvent, table } from './support.js';

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

async function main() {
  const db = await freshDatabase('paywire_bench_replay');
  const { app } = await startPaywire(db.url);
  const fillStarted = performance.now();
  await fill(db.url);
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const raw = await rawRead(db.url);
  const memory = peakMemory();
  const started = performance.now();
  const job = await app.get(ReplayService).start().done;
  const seconds = (performance.now() - started) / 1000;
  const replayMemory = memory.stop();
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
}

await main();
