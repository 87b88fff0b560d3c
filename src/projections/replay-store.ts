/**
 * The SQL of a replay: the set-based reads and writes that rebuild the `_next` projection tables inside
 * PostgreSQL, so a replay's memory does not grow with the log. The rules they encode are the live
 * projector's (routing: `planRoutes`; outcomes of customerless events: `settleCustomerless`), and
 * test/routing-paths.spec.ts runs one table of cases through both.
 */
import { CUSTOMER_EVENT_TYPES, PRODUCT_EVENT_TYPES } from '../billing/event-types.js';
import { UNLINKED_REASON } from '../billing/customer.js';
import { FOLD_INPUT_VERSION } from '../billing/fold-input.js';
import type { SqlExecutor } from '../database/database.js';
import type { FoldedPage, Page, PageRow } from './replay-page.js';
import { PROJECTION_TABLES, recordOutcomes, saveFolded, tablesWithSuffix } from './projection-store.js';

export const NEXT = tablesWithSuffix('_next');

/** ANALYZE, but not of the jsonb documents, which no query filters on: sampling them was most of its cost. */
export async function analyze(db: SqlExecutor, table: string): Promise<void> {
  const [{ columns }] = await db.query<{ columns: string }>(
    `SELECT string_agg(quote_ident(column_name), ', ') AS columns FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1 AND data_type <> 'jsonb'`,
    [table],
  );
  await db.query(`ANALYZE ${table} (${columns})`);
}

/** Empty `_next` copies of every projection table, for a rebuild to fill. */
export async function createNextTables(tx: SqlExecutor): Promise<void> {
  await dropNextTables(tx);
  for (const table of PROJECTION_TABLES) {
    await tx.query(`CREATE TABLE ${table}_next (LIKE ${table} INCLUDING ALL)`);
  }
}

/** What a canceled replay leaves behind. */
export async function dropNextTables(tx: SqlExecutor): Promise<void> {
  for (const table of PROJECTION_TABLES) await tx.query(`DROP TABLE IF EXISTS ${table}_next`);
}

const CUSTOMERS_PER_PAGE = 500;
/** What a page of the rebuild reads of each event; the outer query picks the fold input or the payload. */
const PAGE_COLUMNS = [
  'id',
  'type',
  'created',
  'position',
  'object_id',
  'fold_input',
  'fold_input_version',
  'payload',
];

/** The next customers (by id) that have events, their own or routed to them. */
async function nextCustomers(db: SqlExecutor, after: string): Promise<string[]> {
  // Each branch walks its index in order and stops after a page: a UNION of whole branches would make
  // every page re-read all the customers after it.
  const rows = await db.query<{ customer_id: string }>(
    `SELECT customer_id FROM (
        (SELECT DISTINCT customer_id FROM stripe_events WHERE customer_id > $1
          ORDER BY customer_id LIMIT ${CUSTOMERS_PER_PAGE})
        UNION
        (SELECT DISTINCT customer_id FROM ${NEXT.routes} WHERE customer_id > $1 ORDER BY customer_id LIMIT ${CUSTOMERS_PER_PAGE})
     ) c ORDER BY customer_id LIMIT ${CUSTOMERS_PER_PAGE}`,
    [after],
  );
  return rows.map((row) => row.customer_id);
}

/**
 * Every route a replay needs, planned inside PostgreSQL (so the replay's memory does not grow with the
 * log) with the rules the live projector applies event by event: the first event (by position) that
 * links an object wins it; an event that names no customer goes to the customer of its smallest linked
 * reference (byte order, as in `resolveLinks`) linked before it, or else to the customer of the first of
 * its references linked after it.
 */
export async function planRoutes(tx: SqlExecutor, upTo: number): Promise<void> {
  await tx.query(
    `CREATE TEMP TABLE replay_mentions ON COMMIT DROP AS
       SELECT id, position, customer_id, unnest(refs) COLLATE "C" AS ref
         FROM stripe_events WHERE refs IS NOT NULL AND position <= $1`,
    [upTo],
  );
  await tx.query(
    `CREATE TEMP TABLE replay_links ON COMMIT DROP AS
       SELECT DISTINCT ON (ref) ref, customer_id, position AS linked_at
         FROM replay_mentions WHERE customer_id IS NOT NULL ORDER BY ref, position`,
  );
  await tx.query(
    `INSERT INTO ${NEXT.links} (object_id, customer_id) SELECT ref, customer_id FROM replay_links`,
  );
  await tx.query(
    `INSERT INTO ${NEXT.routes} (event_id, customer_id)
     SELECT DISTINCT ON (m.id) m.id, l.customer_id
       FROM replay_mentions m JOIN replay_links l ON l.ref = m.ref
      WHERE m.customer_id IS NULL
      ORDER BY m.id, l.linked_at > m.position, CASE WHEN l.linked_at < m.position THEN m.ref END, l.linked_at`,
  );
}

/**
 * The next page of customers and all their events up to `upTo`. Each event is read as its fold input,
 * except where the fold needs the whole payload: an event sharing its second with another event of the
 * same object (the causal rank compares their objects), and a row cut by an older FOLD_INPUT_VERSION
 * (refreshed by writePage, so the next replay reads it small).
 */
export async function readPage(db: SqlExecutor, after: string, upTo: number): Promise<Page> {
  const customers = await nextCustomers(db, after);
  if (customers.length === 0) return { customers, rows: [] };
  const rows = await db.query<PageRow>(
    `SELECT e.id, e.type, extract(epoch FROM e.created)::bigint AS created, e.position, e.owner,
            COALESCE(o.outcome, 'pending') AS outcome, o.reason,
            CASE WHEN e.fold_input_version = $3 AND count(*) OVER (PARTITION BY e.object_id, e.created) = 1
                 THEN e.fold_input ELSE e.payload END AS payload,
            e.fold_input_version IS DISTINCT FROM $3 AS outdated
       FROM (
         SELECT ${PAGE_COLUMNS.join(', ')}, customer_id AS owner FROM stripe_events
          WHERE customer_id = ANY($1::text[]) AND position <= $2
         UNION ALL
         SELECT ${PAGE_COLUMNS.map((column) => `e.${column}`).join(', ')}, r.customer_id AS owner
           FROM ${NEXT.routes} r JOIN stripe_events e ON e.id = r.event_id
          WHERE r.customer_id = ANY($1::text[]) AND e.customer_id IS NULL AND e.position <= $2
       ) e LEFT JOIN stripe_event_outcomes o ON o.position = e.position`,
    [customers, upTo, FOLD_INPUT_VERSION],
  );
  return { customers, rows };
}

export async function writePage(tx: SqlExecutor, page: FoldedPage): Promise<void> {
  await saveFolded(tx, NEXT, page.customers, page.outcomes);
  if (page.refreshed.length > 0) {
    await tx.query(
      `UPDATE stripe_events e SET fold_input = r.fold_input::jsonb, fold_input_version = $3
         FROM unnest($1::text[], $2::text[]) AS r(id, fold_input) WHERE e.id = r.id`,
      [page.refreshed.map((r) => r.id), page.refreshed.map((r) => r.foldInput), FOLD_INPUT_VERSION],
    );
  }
}

/** Outcomes of the events no customer holds, settled inside PostgreSQL: products apply, the rest are
 * unlinked or ignored (`unroutedOutcome`). Returns how many there were. */
export async function settleCustomerless(tx: SqlExecutor, upTo: number): Promise<number> {
  const [row] = await tx.query<{ settled: string | number }>(
    `WITH settled AS (
       SELECT e.position, CASE WHEN e.type = ANY($2::text[]) THEN 'applied'
                               WHEN e.type = ANY($3::text[]) THEN 'unlinked' ELSE 'ignored' END AS outcome
         FROM stripe_events e
        WHERE e.customer_id IS NULL AND e.position <= $1
          AND NOT EXISTS (SELECT 1 FROM ${NEXT.routes} r WHERE r.event_id = e.id)
     ), written AS (
       ${recordOutcomes(`SELECT position, outcome, CASE WHEN outcome = 'unlinked' THEN $4 END FROM settled`)}
     )
     SELECT count(*) AS settled FROM settled`,
    [upTo, PRODUCT_EVENT_TYPES, CUSTOMER_EVENT_TYPES, UNLINKED_REASON],
  );
  return Number(row.settled);
}

export async function swapTables(tx: SqlExecutor): Promise<void> {
  for (const table of PROJECTION_TABLES) {
    await tx.query(`ALTER TABLE ${table} RENAME TO ${table}_old`);
    await tx.query(`ALTER TABLE ${table}_next RENAME TO ${table}`);
    await tx.query(`DROP TABLE ${table}_old`);
  }
}
