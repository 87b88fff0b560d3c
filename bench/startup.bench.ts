/**
 * `npm run bench:startup`: how long an instance takes to be ready, and its resident memory, with 10,000
 * and with 100,000 customers in the projections (BENCH_STARTUP_CUSTOMERS overrides the larger). The
 * server is the built one, as its own process, started three times per size; RSS is read from /proc
 * once it is ready and again 2 s later, so that anything it loaded per customer at start would show.
 */
import { freshDatabase, machine, median, seedCustomerStates, spawnPaywire, table } from './support.js';

const LARGE = Number(process.env.BENCH_STARTUP_CUSTOMERS ?? 100_000);
const RUNS = 3;

/** Starts the server on `databaseUrl`; resolves with the time to a 200 from /health/ready and RSS. */
async function startOnce(
  databaseUrl: string,
): Promise<{ readyMs: number; rssReady: number; rssIdle: number }> {
  const started = performance.now();
  const server = await spawnPaywire(databaseUrl);
  const readyMs = performance.now() - started;
  const rssReady = server.rssMiB();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const rssIdle = server.rssMiB();
  await server.stop();
  return { readyMs, rssReady, rssIdle };
}

const rows: Array<Array<string | number>> = [];
const db = await freshDatabase('paywire_bench_startup');
// A first start migrates the database; it is not measured.
await startOnce(db.url);
for (const customers of [10_000, LARGE]) {
  await seedCustomerStates(db.url, 'cus_start', customers);
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await startOnce(db.url));
  rows.push([
    customers.toLocaleString('en-US'),
    runs.map((run) => (run.readyMs / 1000).toFixed(2)).join(', '),
    median(runs.map((run) => run.rssReady)),
    median(runs.map((run) => run.rssIdle)),
  ]);
}
await db.drop();
console.log(`\n${machine()}; the built server, NODE_ENV=production, PostgreSQL on this machine\n`);
console.log(
  table(['customers', 'ready after (s), 3 starts', 'RSS when ready (MiB)', 'RSS 2 s later (MiB)'], rows),
);
