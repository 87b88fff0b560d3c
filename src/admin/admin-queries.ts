/**
 * The admin API's reads (SPEC section 4). Every list is a keyset page: rows are ordered by a unique key,
 * the cursor is the last key served, and the next page starts strictly after it, so rows appended while an
 * admin pages never make a row repeat or disappear. The cursor is opaque to clients (base64url JSON).
 */
import type { BillingState } from '../billing/billing-state.js';
import { sortForFold } from '../billing/fold-order.js';
import type { SqlExecutor } from '../database/database.js';
import { customerEvents } from '../event-log/log-reads.js';
import { LIVE_TABLES } from '../projections/projection-store.js';

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export class BadCursor extends Error {}

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, arity: number): unknown[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(key) &&
      key.length === arity &&
      key.every((part) => typeof part === 'string' || typeof part === 'number')
    ) {
      return key;
    }
  } catch {
    // fall through
  }
  throw new BadCursor();
}

/** Builds `WHERE` clauses with numbered parameters. */
class Where {
  readonly params: unknown[] = [];
  private readonly clauses: string[] = [];

  add(clause: string): this {
    this.clauses.push(clause);
    return this;
  }

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  toString(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

function page<R, T>(rows: R[], limit: number, key: (row: R) => unknown[], map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const served = more ? rows.slice(0, limit) : rows;
  return { data: served.map(map), nextCursor: more ? encodeCursor(key(served[served.length - 1])) : null };
}

export async function listCustomers(
  db: SqlExecutor,
  filter: { email?: string; userId?: string; limit: number; cursor?: string },
): Promise<Page<BillingState>> {
  const after = decodeCursor(filter.cursor, 1);
  const where = new Where();
  if (filter.email) where.add(`lower(email) = lower(${where.param(filter.email)})`);
  if (filter.userId) where.add(`user_id = ${where.param(filter.userId)}`);
  if (after) where.add(`customer_id > ${where.param(after[0])}`);
  const rows = await db.query<{ customer_id: string; view: BillingState }>(
    `SELECT customer_id, view FROM billing_customers ${where} ORDER BY customer_id LIMIT ${filter.limit + 1}`,
    where.params,
  );
  return page(
    rows,
    filter.limit,
    (row) => [row.customer_id],
    (row) => row.view,
  );
}

export async function listSubscriptions(
  db: SqlExecutor,
  filter: { status?: string; customerId?: string; limit: number; cursor?: string },
): Promise<Page<Record<string, unknown>>> {
  const after = decodeCursor(filter.cursor, 1);
  const where = new Where();
  if (filter.status) where.add(`status = ${where.param(filter.status)}`);
  if (filter.customerId) where.add(`customer_id = ${where.param(filter.customerId)}`);
  if (after) where.add(`subscription_id > ${where.param(after[0])}`);
  const rows = await db.query<{ subscription_id: string; view: Record<string, unknown> }>(
    `SELECT subscription_id, view FROM billing_subscriptions ${where} ORDER BY subscription_id LIMIT ${filter.limit + 1}`,
    where.params,
  );
  return page(
    rows,
    filter.limit,
    (row) => [row.subscription_id],
    (row) => row.view,
  );
}

export interface EntitlementRow {
  customerId: string;
  feature: string;
  source: string;
  sourceId: string;
  until: string | null;
}

export async function listEntitlements(
  db: SqlExecutor,
  filter: { feature?: string; customerId?: string; limit: number; cursor?: string },
): Promise<Page<EntitlementRow>> {
  const after = decodeCursor(filter.cursor, 4);
  const where = new Where();
  if (filter.feature) where.add(`feature = ${where.param(filter.feature)}`);
  if (filter.customerId) where.add(`customer_id = ${where.param(filter.customerId)}`);
  if (after) {
    where.add(
      `(customer_id, feature, source, source_id) > (${where.param(after[0])}, ${where.param(after[1])}, ${where.param(after[2])}, ${where.param(after[3])})`,
    );
  }
  const rows = await db.query<{
    customer_id: string;
    feature: string;
    source: string;
    source_id: string;
    until: Date | null;
  }>(
    `SELECT customer_id, feature, source, source_id, until FROM billing_entitlements ${where}
      ORDER BY customer_id, feature, source, source_id LIMIT ${filter.limit + 1}`,
    where.params,
  );
  return page(
    rows,
    filter.limit,
    (row) => [row.customer_id, row.feature, row.source, row.source_id],
    (row) => ({
      customerId: row.customer_id,
      feature: row.feature,
      source: row.source,
      sourceId: row.source_id,
      until: row.until ? new Date(row.until).toISOString() : null,
    }),
  );
}

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
}

const SUMMARY_COLUMNS = `e.id, e.type, e.created, e.position, e.received_at, coalesce(e.customer_id, r.customer_id) AS customer_id,
  e.object_id, e.outcome, e.reason`;

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
  };
}

/** Log rows, newest first. */
export async function listEvents(
  db: SqlExecutor,
  filter: {
    type?: string;
    customerId?: string;
    outcome?: string;
    since?: Date;
    until?: Date;
    limit: number;
    cursor?: string;
  },
): Promise<Page<EventSummary>> {
  const after = decodeCursor(filter.cursor, 1);
  const where = new Where();
  if (filter.type) where.add(`e.type = ${where.param(filter.type)}`);
  if (filter.outcome) where.add(`e.outcome = ${where.param(filter.outcome)}`);
  if (filter.since) where.add(`e.created >= ${where.param(filter.since.toISOString())}::timestamptz`);
  if (filter.until) where.add(`e.created <= ${where.param(filter.until.toISOString())}::timestamptz`);
  if (after) where.add(`e.position < ${where.param(after[0])}`);
  const take = `ORDER BY e.position DESC LIMIT ${filter.limit + 1}`;
  let sql: string;
  if (filter.customerId) {
    // The customer's own events and those routed to it through links: two index lookups, not an OR.
    const customer = where.param(filter.customerId);
    const and = where.toString() ? `${where.toString()} AND` : 'WHERE';
    sql = `SELECT * FROM (
        (SELECT ${SUMMARY_COLUMNS} FROM stripe_events e LEFT JOIN billing_event_routes r ON false
          ${and} e.customer_id = ${customer} ${take})
        UNION ALL
        (SELECT ${SUMMARY_COLUMNS} FROM billing_event_routes r JOIN stripe_events e ON e.id = r.event_id
          ${and} r.customer_id = ${customer} ${take})
      ) e ${take}`;
  } else {
    sql = `SELECT ${SUMMARY_COLUMNS} FROM stripe_events e LEFT JOIN billing_event_routes r ON r.event_id = e.id ${where} ${take}`;
  }
  const rows = await db.query<EventSummaryRow>(sql, where.params);
  return page(rows, filter.limit, (row) => [Number(row.position)], toSummary);
}

export async function findEvent(
  db: SqlExecutor,
  id: string,
): Promise<(EventSummary & { payload: unknown }) | null> {
  const [row] = await db.query<EventSummaryRow & { payload: unknown }>(
    `SELECT ${SUMMARY_COLUMNS}, e.payload FROM stripe_events e LEFT JOIN billing_event_routes r ON r.event_id = e.id
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
  const events = await customerEvents(db, LIVE_TABLES.routes, customerId, { upTo: Number.MAX_SAFE_INTEGER });
  const rows = await db.query<EventSummaryRow>(
    `SELECT ${SUMMARY_COLUMNS} FROM stripe_events e LEFT JOIN billing_event_routes r ON r.event_id = e.id
      WHERE e.id = ANY($1)`,
    [events.map((event) => event.id)],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  return sortForFold(events).map(({ event, key }) => ({ ...toSummary(byId.get(event.id)!), foldKey: key }));
}
