/**
 * What the tests of the live projector's batches share: one database with a connection pool per projector
 * (two on a server; one on embedded PGlite, which is one session), events appended as ingest appends
 * them, and a customer's stored view.
 */
import { afterAll, beforeAll } from '@jest/globals';
import type Stripe from 'stripe';
import { openDatabase, type Sql } from '../../src/database/database.js';
import { EventLog } from '../../src/event-log/event-log.js';
import { eventToAppend } from '../../src/ingest/stripe-webhook.js';
import { createTestDatabase, type TestDatabase } from './database.js';

/** The pools, filled before the file's tests run and closed (with the database dropped) after them. */
export function projectorPools(): Sql[] {
  const pools: Sql[] = [];
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    const target = { url: db.url, dataDir: db.dataDir };
    pools.push(await openDatabase(target, 2));
    if (db.url) pools.push(await openDatabase(target, 2));
  });
  afterAll(async () => {
    for (const sql of pools) await sql.close();
    await db?.drop();
  });
  return pools;
}

export async function appendEvents(sql: Sql, ...events: Stripe.Event[]): Promise<void> {
  const log = new EventLog(sql);
  for (const event of events) await log.appendEvent(eventToAppend(event, JSON.stringify(event)));
}

export async function storedView(sql: Sql, customer: string): Promise<unknown> {
  const [row] = await sql.query<{ view: unknown }>(
    `SELECT view FROM billing_customers WHERE customer_id = $1`,
    [customer],
  );
  return row?.view ?? null;
}
