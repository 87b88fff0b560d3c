/**
 * Crash safety of the projector (issue 3): the real server runs as a child process and is killed with
 * SIGKILL right after webhooks were acknowledged, while the projector is between append and projection or
 * in the middle of a batch. After a restart the projections catch up and equal the fold of the log and a
 * full replay: nothing acknowledged is lost, nothing is applied twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { billingState, type BillingState } from '../src/billing/billing-state.js';
import { parseCatalog } from '../src/billing/catalog.js';
import { foldCustomer } from '../src/billing/customer.js';
import { openDatabase } from '../src/database/database.js';
import { LIVE_TABLES, loadCustomerEvents } from '../src/projections/projection-store.js';
import { ADMIN_KEY, WEBHOOK_SECRET } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { sendEvent, stripeEvent, subscriptionEvent, uid } from './support/stripe.js';

const CATALOG = { prices: { price_pro: ['pro'] } };
let db: TestDatabase;
let port: number;
let child: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

async function startServer(): Promise<void> {
  child = spawn(process.execPath, ['dist/src/main.js'], { env, stdio: 'ignore' });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/live`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server did not start');
}

async function killServer(): Promise<void> {
  const exited = new Promise((resolve) => child!.once('exit', resolve));
  child!.kill('SIGKILL');
  await exited;
  child = undefined;
}

/** Reads the database directly (the server is down, so PGlite's folder is free). */
async function inDatabase<T>(
  work: (sql: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>,
): Promise<T> {
  const sql = await openDatabase({ url: db.url, dataDir: db.dataDir }, 2);
  try {
    return await work(sql);
  } finally {
    await sql.close();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  port = await freePort();
  const catalogFile = join(db.dataDir, 'catalog.json');
  writeFileSync(catalogFile, JSON.stringify(CATALOG));
  env = {
    ...process.env,
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: db.dataDir,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    ADMIN_API_KEY: ADMIN_KEY,
    MQTT_TOKEN_SECRET: 'mqtt-token-secret-for-tests-0123456789abcdef',
    CATALOG_FILE: catalogFile,
    LOG_LEVEL: 'silent',
    ...(db.url ? { DATABASE_URL: db.url } : { DATABASE_URL: '' }),
  };
});

afterAll(async () => {
  if (child) await killServer();
  await db?.drop();
});

function lifecycle(customer: string, base: number): Stripe.Event[] {
  const subscription = (status: string, created: number, type: 'created' | 'updated' = 'updated') =>
    subscriptionEvent(customer, { type, status, created });
  return [
    stripeEvent(
      'customer.created',
      {
        id: customer,
        object: 'customer',
        email: `${customer}@example.com`,
        metadata: { userId: `u_${customer}` },
      },
      { created: base },
    ),
    subscription('trialing', base, 'created'),
    subscription('active', base + 1),
    stripeEvent(
      'invoice.payment_failed',
      { id: `in_${customer}`, object: 'invoice', customer, status: 'open' },
      { created: base + 2 },
    ),
    subscription('past_due', base + 2),
    stripeEvent(
      'invoice.paid',
      { id: `in_${customer}`, object: 'invoice', customer, status: 'paid' },
      { created: base + 3 },
    ),
    subscription('active', base + 3),
  ];
}

it('loses nothing acknowledged and applies nothing twice when killed mid-stream', async () => {
  const customers: string[] = [];
  const acknowledged: string[] = [];
  const backlogs: number[] = [];
  for (let round = 0; round < 4; round++) {
    await startServer();
    const batch = Array.from({ length: 40 }, () => uid('cus'));
    customers.push(...batch);
    const events = batch
      .flatMap((customer, i) => lifecycle(customer, 1_790_000_000 + i * 10))
      .sort(() => Math.random() - 0.5);
    // Kill while webhooks are still arriving: once a quarter of them are acknowledged, the rest are in
    // flight, so the log is growing and the projector is behind or inside a batch.
    let answered = 0;
    let killed: Promise<void> | undefined;
    await Promise.all(
      events.map(async (event) => {
        try {
          const answer = await sendEvent(`http://127.0.0.1:${port}`, event, WEBHOOK_SECRET);
          if (answer.status === 200) acknowledged.push(event.id);
          if (++answered === Math.floor(events.length / 4)) killed = killServer();
        } catch {
          // The connection died with the server: Stripe would retry this one.
        }
      }),
    );
    await (killed ?? killServer());
    backlogs.push(
      await inDatabase(async (sql) => {
        const [row] = await sql.query<{ behind: string }>(
          `SELECT count(*) AS behind FROM stripe_events WHERE position > (SELECT position FROM projector_checkpoints)`,
        );
        return Number(row.behind);
      }),
    );
  }
  // At least one kill left stored events unprojected: the restart had real work to recover.
  expect(Math.max(...backlogs)).toBeGreaterThan(0);

  await startServer();
  const headers = { authorization: `Bearer ${ADMIN_KEY}` };
  for (let i = 0; i < 600; i++) {
    const ready = (await (await fetch(`http://127.0.0.1:${port}/health/ready`)).json()) as {
      projector: { behind: number };
    };
    if (ready.projector.behind === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const live = new Map<string, BillingState>();
  for (const customer of customers) {
    const response = await fetch(`http://127.0.0.1:${port}/admin/customers/${customer}`, { headers });
    if (response.status === 200) live.set(customer, (await response.json()) as BillingState);
  }
  const started = await fetch(`http://127.0.0.1:${port}/admin/replay`, { method: 'POST', headers });
  const { jobId } = (await started.json()) as { jobId: string };
  let state = 'running';
  while (state === 'running') {
    await new Promise((resolve) => setTimeout(resolve, 100));
    state = (
      (await (await fetch(`http://127.0.0.1:${port}/admin/replay/${jobId}`, { headers })).json()) as {
        state: string;
      }
    ).state;
  }
  expect(state).toBe('done');
  for (const [customer, before] of live) {
    expect(
      await (await fetch(`http://127.0.0.1:${port}/admin/customers/${customer}`, { headers })).json(),
    ).toEqual(before);
  }
  await killServer();

  const catalog = parseCatalog(JSON.stringify(CATALOG), 'catalog.json');
  await inDatabase(async (sql) => {
    const stored = new Set(
      (await sql.query<{ id: string }>(`SELECT id FROM stripe_events`)).map((row) => row.id),
    );
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    let folded = 0;
    for (const customer of customers) {
      const log = await loadCustomerEvents(sql, LIVE_TABLES, customer, { upTo: Number.MAX_SAFE_INTEGER });
      if (log.length === 0) continue;
      folded++;
      expect(billingState(foldCustomer(customer, log).state, catalog, {})).toEqual(live.get(customer));
    }
    expect(folded).toBe(live.size);
  });
});
