/**
 * Crash safety of the projector (issue 3): the real server runs as a child process and is killed with
 * SIGKILL right after webhooks were acknowledged, while the projector is between append and projection or
 * in the middle of a batch. After a restart the projections catch up and equal the fold of the log and a
 * full replay: nothing acknowledged is lost, nothing is applied twice.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import type { BillingState } from '../src/billing/billing-state.js';
import { parseCatalog } from '../src/billing/catalog.js';
import { openDatabase } from '../src/database/database.js';
import { WEBHOOK_SECRET } from './support/app.js';
import { foldedState } from './support/folded-state.js';
import { replayToEnd, settled, stateOn } from './support/instance.js';
import { serverProcess, type ServerProcess } from './support/server-process.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { sendEvent, stripeEvent, subscriptionEvent, uid } from './support/stripe.js';

const CATALOG = { prices: { price_pro: ['pro'] } };
let db: TestDatabase;
let server: ServerProcess;

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
  const catalogFile = join(db.dataDir, 'catalog.json');
  writeFileSync(catalogFile, JSON.stringify(CATALOG));
  server = await serverProcess(db, { CATALOG_FILE: catalogFile });
});

afterAll(async () => {
  await server?.kill();
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
    await server.start();
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
          const answer = await sendEvent(server.url, event, WEBHOOK_SECRET);
          if (answer.status === 200) acknowledged.push(event.id);
          if (++answered === Math.floor(events.length / 4)) killed = server.kill();
        } catch {
          // The connection died with the server: Stripe would retry this one.
        }
      }),
    );
    await (killed ?? server.kill());
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

  await server.start();
  await settled(server.url, 60_000);
  const live = new Map<string, BillingState>();
  for (const customer of customers) {
    const state = await stateOn(server.url, customer);
    if (state) live.set(customer, state);
  }
  expect((await replayToEnd(server.url)).state).toBe('done');
  for (const [customer, before] of live) expect(await stateOn(server.url, customer)).toEqual(before);
  await server.kill();

  const catalog = parseCatalog(JSON.stringify(CATALOG), 'catalog.json');
  await inDatabase(async (sql) => {
    const stored = new Set(
      (await sql.query<{ id: string }>(`SELECT id FROM stripe_events`)).map((row) => row.id),
    );
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    let folded = 0;
    for (const customer of customers) {
      const expected = await foldedState(sql, customer, catalog);
      if (!expected) continue;
      folded++;
      expect(expected).toEqual(live.get(customer));
    }
    expect(folded).toBe(live.size);
  });
});
