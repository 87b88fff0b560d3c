/**
 * `npm run bench:startup`: how long an instance takes to be ready, and its resident memory, with 10,000
 * and with 100,000 customers in the projections (BENCH_STARTUP_CUSTOMERS overrides the larger). The
 * server is the built one, as its own process, started three times per size; RSS is read from /proc
 * once it is ready and again 2 s later, so that anything it loaded per customer at start would show.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BENCH_SECRETS, freshDatabase, machine, seedCustomerStates, table } from './support.js';
import { freePort } from './free-port.js';

const LARGE = Number(process.env.BENCH_STARTUP_CUSTOMERS ?? 100_000);
const RUNS = 3;

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('VmRSS:'));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

/** Starts the server on `databaseUrl`; resolves with the time to a 200 from /health/ready and RSS. */
async function startOnce(
  databaseUrl: string,
): Promise<{ readyMs: number; rssReady: number; rssIdle: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      ...BENCH_SECRETS,
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const readyMs = performance.now() - started;
  const rssReady = rssMiB(child.pid!);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const rssIdle = rssMiB(child.pid!);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
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
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
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
