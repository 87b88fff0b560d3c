/**
 * Every read of the event log (SPEC section 3), in one place and with one column list: the events after a
 * position (a replay's catch-up), a customer's events (named by it, or routed to it through a link, in
 * the routes table the caller names: the live one, or a replay's `_next` copy), chosen events' whole
 * payloads, the product events, the
 * customerless events waiting for a link, and the log's size. Each returns the billing core's
 * `LoggedEvent`. A replay's set-based page reads live in projections/replay-store.ts, and the live
 * projector's first read of a batch, which brings the customers' stored states with the events, in
 * projections/projection-store.ts; both with this module's columns.
 */
import { PRODUCT_EVENT_TYPES } from '../billing/event-types.js';
import type { EventPayload, LoggedEvent } from '../billing/events.js';
import type { SqlExecutor } from '../database/database.js';
import { FOLD_INPUT_VERSION } from '../billing/fold-input.js';

/**
 * Where the projector records the customer it routed a customerless event to, through a link (a replay
 * builds a `_next` copy). The log's readers join it to name an event's customer.
 */
export const ROUTES_TABLE = 'billing_event_routes';

const EVENT_COLUMNS = `id, type, extract(epoch FROM created)::bigint AS created, position, payload`;

/**
 * The same, with the event's fold input as its payload where one of this version was cut: a few hundred
 * bytes instead of ~4 KB to send, parse and collect (the projector's read-back of full payloads was a
 * tenth of its process's time at 16 senders, `npm run bench:profile`). For events the projector evolves
 * a state by, or that a page of a customer's history holds once in their second and object; where the
 * causal rank compares two events of one object in one second it needs their whole objects (fold-input.ts).
 */
export const FOLD_COLUMNS = `id, type, extract(epoch FROM created)::bigint AS created, position,
  CASE WHEN fold_input_version = ${FOLD_INPUT_VERSION} THEN fold_input ELSE payload END AS payload`;

/** How many events the log holds, and the position of the newest (0 for an empty log). */
export async function logSize(db: SqlExecutor): Promise<{ count: number; head: number }> {
  const [row] = await db.query<{ count: string | number; head: string | number | null }>(
    `SELECT count(*) AS count, max(position) AS head FROM stripe_events`,
  );
  return { count: Number(row.count), head: Number(row.head ?? 0) };
}

export interface EventRow {
  id: string;
  type: string;
  created: string | number;
  position: string | number;
  payload: LoggedEvent['payload'];
  received_at?: string | number;
}

/** Reads the log after `position` through any executor (the projector reads inside its transaction). */
export async function readEventsAfter(
  db: SqlExecutor,
  position: number,
  limit: number,
): Promise<LoggedEvent[]> {
  const rows = await db.query<EventRow>(
    `SELECT ${FOLD_COLUMNS}, (extract(epoch FROM received_at) * 1000)::bigint AS received_at
       FROM stripe_events WHERE position > $1 ORDER BY position LIMIT $2`,
    [position, limit],
  );
  return rows.map(toLoggedEvent);
}

export function toLoggedEvent(row: EventRow): LoggedEvent {
  return {
    id: row.id,
    type: row.type,
    created: Number(row.created),
    position: Number(row.position),
    payload: row.payload,
    ...(row.received_at !== undefined ? { receivedAt: Number(row.received_at) } : {}),
  };
}

/** The customer's events up to `upTo` (a log position), or with `created` up to `asOf` (seconds). */
export async function customerEvents(
  tx: SqlExecutor,
  routes: string,
  customerId: string,
  bound: { upTo: number } | { asOf: number },
): Promise<LoggedEvent[]> {
  const limit = 'upTo' in bound ? `position <= $2` : `created <= to_timestamp($2)`;
  const columns = `id, type, created, position, payload, fold_input, fold_input_version, object_id`;
  // Two index lookups joined by UNION ALL: an OR across the two would make PostgreSQL scan the log. Each
  // event is read as its fold input unless another event of its object shares its second (as a replay
  // reads a page, replay-store.ts).
  const rows = await tx.query<EventRow>(
    `SELECT id, type, extract(epoch FROM created)::bigint AS created, position,
            CASE WHEN fold_input_version = $3 AND count(*) OVER (PARTITION BY object_id, created) = 1
                 THEN fold_input ELSE payload END AS payload
       FROM (SELECT ${columns} FROM stripe_events WHERE customer_id = $1 AND ${limit}
             UNION ALL
             SELECT ${columns} FROM stripe_events
              WHERE id IN (SELECT event_id FROM ${routes} WHERE customer_id = $1) AND customer_id IS NULL AND ${limit}) e
      ORDER BY position`,
    [customerId, 'upTo' in bound ? bound.upTo : bound.asOf, FOLD_INPUT_VERSION],
  );
  return rows.map(toLoggedEvent);
}

/** The whole payloads of the events at `positions`, for those of them read as fold inputs. */
export async function wholePayloads(
  db: SqlExecutor,
  positions: number[],
): Promise<Map<number, EventPayload>> {
  if (positions.length === 0) return new Map();
  const rows = await db.query<{ position: string | number; payload: EventPayload }>(
    `SELECT position, payload FROM stripe_events WHERE position = ANY($1::bigint[])`,
    [positions],
  );
  return new Map(rows.map((row) => [Number(row.position), row.payload]));
}

export async function productEvents(
  tx: SqlExecutor,
  bound: { upTo: number } | { asOf: number },
): Promise<LoggedEvent[]> {
  const rows =
    'upTo' in bound
      ? await tx.query<EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM stripe_events WHERE type = ANY($2) AND position <= $1 ORDER BY position`,
          [bound.upTo, PRODUCT_EVENT_TYPES],
        )
      : await tx.query<EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM stripe_events WHERE type = ANY($2) AND created <= to_timestamp($1) ORDER BY position`,
          [bound.asOf, PRODUCT_EVENT_TYPES],
        );
  return rows.map(toLoggedEvent);
}

/**
 * Events before `position` that name no customer, reference one of `objectIds`, and are not routed yet:
 * those waiting for a link that the event at `position` makes. Later events are not waiting for it: the
 * projector routes them when it reaches them, with every link made before them in view.
 */
export async function unroutedEvents(
  tx: SqlExecutor,
  routes: string,
  objectIds: string[],
  position: number,
): Promise<LoggedEvent[]> {
  const rows = await tx.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM stripe_events e
      WHERE customer_id IS NULL AND refs && $1::text[] AND position < $2
        AND NOT EXISTS (SELECT 1 FROM ${routes} r WHERE r.event_id = e.id)`,
    [objectIds, position],
  );
  return rows.map(toLoggedEvent);
}

/** How many events are stored after `position` (the projector's backlog). */
export async function eventsAfterCount(db: SqlExecutor, position: number): Promise<number> {
  const [row] = await db.query<{ behind: string | number }>(
    `SELECT count(*) AS behind FROM stripe_events WHERE position > $1`,
    [position],
  );
  return Number(row.behind);
}
