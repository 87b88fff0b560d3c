/**
 * Routing has two implementations: the live projector routes event by event in TypeScript
 * (`projectBatch`), and a replay plans every route at once in SQL (`planRoutes`). One table of cases runs
 * through both, and through the live path with the whole log in one batch and with one event per batch,
 * so the three cannot drift apart. The rules (SPEC section 5, README "disputes and guest charges"): the
 * first event that links an object wins it; an event that names no customer goes to the customer of its
 * smallest linked reference (byte order) linked before it, or else to the customer of the first of its
 * references linked after it; with none, it stays unlinked. What reaches no customer is given the same
 * outcome on both paths (`unroutedOutcome` live, `settleCustomerless` in SQL, from one type registry).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { EMPTY_CATALOG } from '../src/billing/catalog.js';
import { openDatabase, type Sql } from '../src/database/database.js';
import { EventLog } from '../src/event-log/event-log.js';
import { readEventsAfter } from '../src/event-log/log-reads.js';
import { eventToAppend } from '../src/ingest/stripe-webhook.js';
import { projectBatch } from '../src/projections/project-batch.js';
import { LIVE_TABLES, PROJECTION_TABLES } from '../src/projections/projection-store.js';
import { NEXT, createNextTables, planRoutes, settleCustomerless } from '../src/projections/replay-store.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { stripeEvent, uid } from './support/stripe.js';

interface RoutingCase {
  name: string;
  events: Stripe.Event[];
  /** The customerless events of the case, with the customer each must reach (null: none). */
  expected: Array<[Stripe.Event, string | null]>;
  /** For events that reach no customer: the outcome each must be given. */
  outcomes?: Array<[Stripe.Event, string]>;
}

let created = 1_790_000_000;
const charge = (customer: string, ids: { ch?: string; pi?: string }) =>
  stripeEvent(
    'charge.refunded',
    { id: ids.ch ?? uid('ch'), object: 'charge', customer, payment_intent: ids.pi, refunded: false },
    { created: created++ },
  );
const dispute = (ids: { ch?: string; pi?: string }) =>
  stripeEvent(
    'charge.dispute.created',
    { id: uid('dp'), object: 'dispute', charge: ids.ch, payment_intent: ids.pi },
    { created: created++ },
  );

function cases(): RoutingCase[] {
  const list: RoutingCase[] = [];
  {
    const [a, b] = [uid('cus'), uid('cus')];
    const pi = `pi_${a}`;
    const late = dispute({ pi });
    list.push({
      name: 'the first link of an object wins it',
      events: [charge(a, { pi }), charge(b, { pi }), late],
      expected: [[late, a]],
    });
  }
  {
    const [a, b] = [uid('cus'), uid('cus')];
    const [pi, ch] = [`pi_${a}`, `ch_${b}`];
    const both = dispute({ ch, pi });
    list.push({
      name: 'of references linked before, the smallest wins, whichever was linked first',
      events: [charge(a, { pi }), charge(b, { ch, pi }), both],
      expected: [[both, b]],
    });
  }
  {
    const c = uid('cus');
    const waiting = { ch: `ch_${c}`, pi: `pi_${c}` };
    const early = dispute(waiting);
    list.push({
      name: 'an event waits for a link made after it',
      events: [early, charge(c, waiting)],
      expected: [[early, c]],
    });
  }
  {
    const [d, e] = [uid('cus'), uid('cus')];
    const [ch, pi] = [`ch_${d}`, `pi_${e}`];
    const early = dispute({ ch, pi });
    list.push({
      name: 'of references linked after, the first linked wins',
      events: [early, charge(e, { pi }), charge(d, { ch })],
      expected: [[early, e]],
    });
  }
  {
    const [f, g] = [uid('cus'), uid('cus')];
    const [pi, ch] = [`pi_${f}`, `ch_${g}`];
    const between = dispute({ ch, pi });
    list.push({
      name: 'a reference linked before beats a smaller one linked after',
      events: [charge(f, { pi }), between, charge(g, { ch })],
      expected: [[between, f]],
    });
  }
  {
    const orphan = dispute({ ch: uid('ch'), pi: uid('pi') });
    list.push({
      name: 'with no link, an event stays unlinked',
      events: [orphan],
      expected: [[orphan, null]],
      outcomes: [[orphan, 'unlinked']],
    });
  }
  {
    const unhandled = stripeEvent(
      'invoice.finalized',
      { id: uid('in'), object: 'invoice' },
      { created: created++ },
    );
    const product = stripeEvent(
      'product.updated',
      { id: uid('prod'), object: 'product', metadata: { features: 'pro' } },
      { created: created++ },
    );
    list.push({
      name: 'a type the fold does not handle is ignored; a product event applies, to no one customer',
      events: [unhandled, product],
      expected: [
        [unhandled, null],
        [product, null],
      ],
      outcomes: [
        [unhandled, 'ignored'],
        [product, 'applied'],
      ],
    });
  }
  return list;
}

let db: TestDatabase;
let sql: Sql;
const CASES = cases();

beforeAll(async () => {
  db = await createTestDatabase();
  sql = await openDatabase({ url: db.url, dataDir: db.dataDir });
  const log = new EventLog(sql);
  for (const event of CASES.flatMap((c) => c.events)) {
    const body = JSON.stringify(event);
    await log.appendEvent(eventToAppend(JSON.parse(body), body));
  }
});

afterAll(async () => {
  await sql?.close();
  await db?.drop();
});

interface Routed {
  routes: Map<string, string>;
  outcomes: Map<string, string>;
}

async function routed(table: string): Promise<Routed> {
  const rows = await sql.query<{ event_id: string; customer_id: string }>(
    `SELECT event_id, customer_id FROM ${table}`,
  );
  const outcomes = await sql.query<{ id: string; outcome: string }>(
    `SELECT e.id, coalesce(o.outcome, 'pending') AS outcome
       FROM stripe_events e LEFT JOIN stripe_event_outcomes o ON o.position = e.position`,
  );
  return {
    routes: new Map(rows.map((row) => [row.event_id, row.customer_id])),
    outcomes: new Map(outcomes.map((row) => [row.id, row.outcome])),
  };
}

/** Empty projections and every log row pending, as before anything was projected. */
async function reset(): Promise<void> {
  await sql.query(`TRUNCATE ${PROJECTION_TABLES.join(', ')}`);
  await sql.query(`TRUNCATE stripe_event_outcomes`);
}

/** The live projector's path, over the whole log in batches of `batchSize`, on empty projections. */
async function live(batchSize: number): Promise<Routed> {
  await reset();
  const events = await readEventsAfter(sql, 0, 10_000);
  for (let i = 0; i < events.length; i += batchSize) {
    await sql.transaction((tx) =>
      projectBatch(tx, LIVE_TABLES, events.slice(i, i + batchSize), EMPTY_CATALOG),
    );
  }
  return routed(LIVE_TABLES.routes);
}

/** A replay's path: every route planned at once, and the events no customer holds settled in SQL. */
async function replay(): Promise<Routed> {
  await reset();
  const [{ head }] = await sql.query<{ head: string }>(`SELECT max(position) AS head FROM stripe_events`);
  await sql.transaction(async (tx) => {
    await createNextTables(tx);
    await planRoutes(tx, Number(head));
    await settleCustomerless(tx, Number(head));
  });
  return routed(NEXT.routes);
}

const PATHS: Array<[string, () => Promise<Routed>]> = [
  ['the live projector, one event per batch', () => live(1)],
  ['the live projector, the whole log in one batch', () => live(10_000)],
  ['a replay', replay],
];

describe.each(PATHS)('%s', (_path, route) => {
  let result: Routed;
  beforeAll(async () => {
    result = await route();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, routingCase) => {
    const got = routingCase.expected.map(([event]) => result.routes.get(event.id) ?? null);
    expect(got).toEqual(routingCase.expected.map(([, customer]) => customer));
    const outcomes = routingCase.outcomes ?? [];
    expect(outcomes.map(([event]) => result.outcomes.get(event.id))).toEqual(outcomes.map(([, o]) => o));
  });
});
