/**
 * The log as admins read it (SPEC section 4): pages of event summaries (newest first, filtered by type,
 * customer, outcome and time), one event with its payload, and a customer's trail in fold order. A
 * summary names the event's customer, its own or the one a link routed it to (the live routes table).
 */
import { sortForFold } from '../billing/fold-order.js';
import type { SqlExecutor } from '../database/database.js';
import { Where, decodeCursor, keysetPage, type Page } from '../database/keyset.js';
import { ROUTES_TABLE, customerEvents } from './log-reads.js';

export interface EventSummary {
  id: string;
  type: string;
  created: string;
  position: number;
  receivedAt: string;
  customerId: string | null;
  objectId: string | null;
  outcome: string;
  reason: string | null;
  source: string;
}

interface EventSummaryRow {
  id: string;
  type: string;
  created: Date | string;
  position: string | number;
  received_at: Date | string;
  customer_id: string | null;
  object_id: string | null;
  outcome: string;
  reason: string | null;
  source: string;
}

const SUMMARY_COLUMNS = `e.id, e.type, e.created, e.position, e.received_at, coalesce(e.customer_id, r.customer_id) AS customer_id,
  e.object_id, coalesce(o.outcome, 'pending') AS outcome, o.reason, e.source`;
/** An event's outcome row (migrations/…-EventOutcomes.ts); an event without one is pending. */
const OUTCOME_JOIN = `LEFT JOIN stripe_event_outcomes o ON o.position = e.position`;

function toSummary(row: EventSummaryRow): EventSummary {
  return {
    id: row.id,
    type: row.type,
    created: new Date(row.created).toISOString(),
    position: Number(row.position),
    receivedAt: new Date(row.received_at).toISOString(),
    customerId: row.customer_id,
    objectId: row.object_id,
    outcome: row.outcome,
    reason: row.reason,
    source: row.source,
  };
}

/** Log rows, newest first. */
export async function listEvents(
  db: SqlExecutor,
  filter: {
    type?: string;
    customerId?: string;
    outcome?: string;
    source?: string;
    since?: Date;
    until?: Date;
    limit: number;
    cursor?: string;
  },
): Promise<Page<EventSummary>> {
  const after = decodeCursor(filter.cursor, ['position']);
  const where = new Where();
  if (filter.type) where.add(`e.type = ${where.param(filter.type)}`);
  if (filter.outcome === 'pending') {
    // Not projected yet: after the checkpoint, which the projector moves in the transaction that writes
    // the outcomes of everything up to it. Bounded so, the filter reads the log's unprojected tail instead
    // of looking for a missing outcome across the whole log.
    where.add(`o.position IS NULL`);
    where.add(`e.position > (SELECT position FROM projector_checkpoints WHERE name = 'billing')`);
  } else if (filter.outcome) where.add(`o.outcome = ${where.param(filter.outcome)}`);
  if (filter.source) where.add(`e.source = ${where.param(filter.source)}`);
  if (filter.since) where.add(`e.created >= ${where.param(filter.since.toISOString())}::timestamptz`);
  if (filter.until) where.add(`e.created <= ${where.param(filter.until.toISOString())}::timestamptz`);
  if (after) where.add(`e.position < ${where.param(after[0])}`);
  // A parameter, not a literal: each distinct text becomes a prepared statement on every connection.
  const take = `ORDER BY e.position DESC LIMIT ${where.param(filter.limit + 1)}`;
  let sql: string;
  if (filter.customerId) {
    // The customer's own events and those routed to it through links: two index lookups, not an OR.
    const customer = where.param(filter.customerId);
    const and = where.toString() ? `${where.toString()} AND` : 'WHERE';
    sql = `SELECT * FROM (
        (SELECT ${SUMMARY_COLUMNS} FROM stripe_events e LEFT JOIN ${ROUTES_TABLE} r ON false ${OUTCOME_JOIN}
          ${and} e.customer_id = ${customer} ${take})
        UNION ALL
        (SELECT ${SUMMARY_COLUMNS} FROM ${ROUTES_TABLE} r JOIN stripe_events e ON e.id = r.event_id ${OUTCOME_JOIN}
          ${and} r.customer_id = ${customer} ${take})
      ) e ${take}`;
  } else {
    sql = `SELECT ${SUMMARY_COLUMNS} FROM stripe_events e LEFT JOIN ${ROUTES_TABLE} r ON r.event_id = e.id ${OUTCOME_JOIN}
      ${where} ${take}`;
  }
  const rows = await db.query<EventSummaryRow>(sql, where.params);
  return keysetPage(rows, filter.limit, (row) => [Number(row.position)], toSummary);
}

export async function findEvent(
  db: SqlExecutor,
  id: string,
): Promise<(EventSummary & { payload: unknown }) | null> {
  const [row] = await db.query<EventSummaryRow & { payload: unknown }>(
    `SELECT ${SUMMARY_COLUMNS}, e.payload FROM stripe_events e LEFT JOIN ${ROUTES_TABLE} r ON r.event_id = e.id ${OUTCOME_JOIN}
      WHERE e.id = $1`,
    [id],
  );
  return row ? { ...toSummary(row), payload: row.payload } : null;
}

/**
 * The customer's events in fold order (SPEC section 3), each with its outcome and fold key: the same read
 * of the customer's events the projector folds (`customerEvents`), then their log rows by id.
 */
export async function customerTrail(db: SqlExecutor, customerId: string) {
  const events = await customerEvents(db, ROUTES_TABLE, customerId, { upTo: Number.MAX_SAFE_INTEGER });
  const rows = await db.query<EventSummaryRow>(
    `SELECT ${SUMMARY_COLUMNS} FROM stripe_events e LEFT JOIN ${ROUTES_TABLE} r ON r.event_id = e.id ${OUTCOME_JOIN}
      WHERE e.id = ANY($1)`,
    [events.map((event) => event.id)],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  return sortForFold(events).map(({ event, key }) => ({ ...toSummary(byId.get(event.id)!), foldKey: key }));
}
