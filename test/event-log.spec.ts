/**
 * The log's order under concurrency: appenders on several connections (as several Paywire instances
 * would be) while a reader follows `position`. A reader that has seen position P never later finds an
 * event below P: nothing is skipped, so a projector's checkpoint is safe.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { openDatabase, type Sql } from '../src/database/database.js';
import { EventLog, type EventToAppend } from '../src/event-log/event-log.js';
import { readEventsAfter } from '../src/event-log/log-reads.js';
import { eventToAppend } from '../src/ingest/stripe-webhook.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { uid } from './support/stripe.js';

let db: TestDatabase;
const connections: Sql[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const target = { url: db.url, dataDir: db.dataDir };
  connections.push(await openDatabase(target));
  // With a real server each "instance" has its own pool; embedded PGlite is one in-process session.
  if (db.url) connections.push(await openDatabase(target));
});

afterAll(async () => {
  for (const sql of connections) await sql.close();
  await db?.drop();
});

function event(): EventToAppend {
  const id = uid('evt');
  const body = JSON.stringify({
    id,
    object: 'event',
    type: 'customer.updated',
    created: 1,
    data: { object: { id: 'cus_1' } },
  });
  return eventToAppend(JSON.parse(body), body);
}

it('is read in position order without gaps while several instances append concurrently', async () => {
  const logs = connections.map((sql) => new EventLog(sql));
  const total = 1200;
  const appended: string[] = [];
  let writing = true;
  const writers = (async () => {
    const batches = Array.from({ length: total / 40 }, (_, b) =>
      Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          logs[(b + i) % logs.length].appendEvent(event()).then(() => undefined),
        ),
      ),
    );
    await Promise.all(batches);
    writing = false;
  })();
  const seen: Array<{ id: string; position: number }> = [];
  let checkpoint = 0;
  while (writing || seen.length < total) {
    const page = await readEventsAfter(connections[0], checkpoint, 100);
    for (const row of page) {
      expect(row.position).toBeGreaterThan(checkpoint);
      seen.push({ id: row.id, position: row.position });
      checkpoint = row.position;
    }
    if (page.length === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    if (!writing && page.length === 0 && seen.length < total) break;
  }
  await writers;
  appended.push(
    ...(await connections[0].query<{ id: string }>(`SELECT id FROM stripe_events`)).map((row) => row.id),
  );
  expect(seen).toHaveLength(total);
  expect(new Set(seen.map((row) => row.id))).toEqual(new Set(appended));
});

it('stores each event of a batch with its own payload and fold input, and a row PostgreSQL refuses fails alone', async () => {
  const log = new EventLog(connections[0]);
  const events = Array.from({ length: 20 }, (_, i) => {
    const id = uid('evt');
    // A NUL escape is valid JSON that jsonb refuses (SQLSTATE 22P05): the batch fails and is retried alone.
    const email = i === 7 ? 'bad\u0000@example.com' : `c${i}@example.com`;
    const body = JSON.stringify({
      id,
      object: 'event',
      type: 'customer.updated',
      created: 1_700_000_000 + i,
      data: { object: { id: `cus_batch${i}`, object: 'customer', email } },
    });
    return eventToAppend(JSON.parse(body), body);
  });
  const results = await Promise.allSettled(events.map((e) => log.appendEvent(e)));
  expect(results.map((result) => result.status)).toEqual(
    events.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')),
  );
  const rows = await connections[0].query<{ id: string; payload: unknown; fold_input: unknown }>(
    `SELECT id, payload, fold_input FROM stripe_events WHERE id = ANY($1)`,
    [events.map((e) => e.id)],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  expect(byId.size).toBe(19);
  for (const [i, e] of events.entries()) {
    if (i === 7) continue;
    expect(byId.get(e.id)?.payload).toEqual(JSON.parse(e.body));
    expect(byId.get(e.id)?.fold_input).toEqual(JSON.parse(e.foldInput));
  }
});
