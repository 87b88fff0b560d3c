/**
 * SQL for the projection tables. Every function takes the transaction it runs in and the set of tables
 * to write (`live`, or the `_next` copies a replay builds), so the projector and the replay share them.
 */
import type { BillingState } from '../billing/billing-state.js';
import type { CustomerState } from '../billing/customer.js';
import type { LoggedEvent, Outcome } from '../billing/events.js';
import type { ProductFeatures } from '../billing/products.js';
import type { SqlExecutor, SqlTransaction } from '../database/database.js';
import { FOLD_COLUMNS, ROUTES_TABLE, toLoggedEvent, type EventRow } from '../event-log/log-reads.js';

export const PROJECTION_TABLES = [
  'billing_customers',
  'billing_subscriptions',
  'billing_entitlements',
  'billing_products',
  'billing_links',
  'billing_event_routes',
] as const;

export interface Tables {
  customers: string;
  subscriptions: string;
  entitlements: string;
  products: string;
  links: string;
  /** Events routed to a customer through a link rather than by naming it. */
  routes: string;
}

export function tablesWithSuffix(suffix: string): Tables {
  return {
    customers: `billing_customers${suffix}`,
    subscriptions: `billing_subscriptions${suffix}`,
    entitlements: `billing_entitlements${suffix}`,
    products: `billing_products${suffix}`,
    links: `billing_links${suffix}`,
    routes: `${ROUTES_TABLE}${suffix}`,
  };
}

export const LIVE_TABLES = tablesWithSuffix('');

export async function loadCustomerStates(
  tx: SqlExecutor,
  tables: Tables,
  ids: string[],
): Promise<Map<string, CustomerState>> {
  if (ids.length === 0) return new Map();
  const rows = await tx.query<{ customer_id: string; state: CustomerState }>(
    `SELECT customer_id, state FROM ${tables.customers} WHERE customer_id = ANY($1::text[])`,
    [ids],
  );
  return new Map(rows.map((row) => [row.customer_id, row.state]));
}

/**
 * The stored states of `ids` and every product's features, in one round trip: a projected batch needs both
 * before it can fold, and reading them apart cost a statement per batch (`npm run bench:profile`).
 */
export async function loadStatesAndProducts(
  tx: SqlExecutor,
  tables: Tables,
  ids: string[],
): Promise<{ states: Map<string, CustomerState>; products: ProductFeatures }> {
  const rows = await tx.query<StateOrProductRow>(
    `SELECT 'state' AS kind, customer_id AS id, state AS payload FROM ${tables.customers}
      WHERE customer_id = ANY($1::text[])
     UNION ALL
     SELECT 'product', product_id, to_jsonb(features) FROM ${tables.products}`,
    [ids],
  );
  return statesAndProductsFrom(rows);
}

/** A row of a stored state (`payload` the customer's state) or of a product's features. */
interface StateOrProductRow {
  kind: string;
  id: string;
  payload: unknown;
}

/** The states and product features among `rows`; other kinds of row are skipped. */
function statesAndProductsFrom(rows: StateOrProductRow[]): {
  states: Map<string, CustomerState>;
  products: ProductFeatures;
} {
  const states = new Map<string, CustomerState>();
  const products: ProductFeatures = {};
  for (const row of rows) {
    if (row.kind === 'state') states.set(row.id, row.payload as CustomerState);
    else if (row.kind === 'product') products[row.id] = row.payload as string[];
  }
  return { states, products };
}

/**
 * What the live projector reads to start a batch, in one round trip: it locks the checkpoint row (which
 * serialises batches, and a replay's swap, across instances), reads up to `limit` events after it, and
 * with them the stored states of the customers those events name and every product's features, which the
 * fold needs next (a round trip of its own before, 0.4-0.6 ms of a webhook's push, `npm run bench:push`).
 */
export interface LiveBatchRead {
  checkpoint: number;
  /** The locked checkpoint row's `xmin`: the transaction that last wrote the live tables. */
  checkpointXmin: string | null;
  events: LoggedEvent[];
  /**
   * The states (of the customers in `named`; one without a row has none yet) and product features, or
   * null when they must be read again. The statement reads with the snapshot it started with, and if it
   * waited for the lock while another batch or a replay's swap committed, that snapshot predates their
   * writes: the checkpoint row it locked is then a newer version (another `xmin`) than the one it saw.
   * Every writer of the live tables moves the checkpoint in its transaction, so the same version means
   * nothing was written since.
   */
  prefetched: Prefetched | null;
}

export interface Prefetched {
  named: Set<string>;
  states: Map<string, CustomerState>;
  products: ProductFeatures;
}

export async function lockCheckpointAndReadAfter(tx: SqlExecutor, limit: number): Promise<LiveBatchRead> {
  type Row = EventRow & {
    kind: 'event' | 'state' | 'product';
    checkpoint: string | number;
    checkpoint_xmin: string | null;
    fresh: boolean;
    customer_id: string | null;
  };
  const rows = await tx.query<Row>(
    `WITH c AS (SELECT position, xmin FROM projector_checkpoints WHERE name = 'billing' FOR UPDATE),
          e AS (SELECT ${FOLD_COLUMNS}, (extract(epoch FROM received_at) * 1000)::bigint AS received_at, customer_id
                  FROM stripe_events WHERE position > (SELECT position FROM c) ORDER BY position LIMIT $1)
     SELECT 'event' AS kind, c.position AS checkpoint, c.xmin::text AS checkpoint_xmin,
            c.xmin = (SELECT xmin FROM projector_checkpoints WHERE name = 'billing') AS fresh, e.*
       FROM c CROSS JOIN e
     UNION ALL
     SELECT 'state', NULL, NULL, NULL, s.customer_id, NULL, NULL, NULL, s.state, NULL, NULL
       FROM ${LIVE_TABLES.customers} s WHERE s.customer_id IN (SELECT customer_id FROM e)
     UNION ALL
     SELECT 'product', NULL, NULL, NULL, p.product_id, NULL, NULL, NULL, to_jsonb(p.features), NULL, NULL
       FROM ${LIVE_TABLES.products} p WHERE EXISTS (SELECT 1 FROM e)`,
    [limit],
  );
  const eventRows = rows
    .filter((row) => row.kind === 'event')
    .sort((a, b) => Number(a.position) - Number(b.position));
  const read: LiveBatchRead = {
    checkpoint: Number(eventRows[0]?.checkpoint ?? 0),
    checkpointXmin: eventRows[0]?.checkpoint_xmin ?? null,
    events: eventRows.map(toLoggedEvent),
    prefetched: null,
  };
  if (!eventRows[0]?.fresh) return read;
  const named = new Set(eventRows.flatMap((row) => (row.customer_id ? [row.customer_id] : [])));
  return { ...read, prefetched: { named, ...statesAndProductsFrom(rows) } };
}

export async function saveProducts(
  tx: SqlExecutor,
  tables: Tables,
  products: ProductFeatures,
): Promise<void> {
  await tx.query(`DELETE FROM ${tables.products}`);
  const ids = Object.keys(products);
  if (ids.length === 0) return;
  await tx.query(
    `INSERT INTO ${tables.products} (product_id, features)
     SELECT id, string_to_array(features, ',') FROM unnest($1::text[], $2::text[]) AS p(id, features)`,
    [ids, ids.map((id) => products[id].join(','))],
  );
}

export async function customersHoldingProducts(
  tx: SqlExecutor,
  tables: Tables,
  productIds: string[],
): Promise<string[]> {
  const rows = await tx.query<{ customer_id: string }>(
    `SELECT DISTINCT customer_id FROM ${tables.subscriptions} WHERE product_ids && $1::text[]`,
    [productIds],
  );
  return rows.map((row) => row.customer_id);
}

export async function resolveLinks(
  tx: SqlExecutor,
  tables: Tables,
  objectIds: string[],
): Promise<string | null> {
  if (objectIds.length === 0) return null;
  // Byte order, not the database's collation: a replay plans the same choice (planRoutes) on any server.
  const rows = await tx.query<{ customer_id: string }>(
    `SELECT customer_id FROM ${tables.links} WHERE object_id = ANY($1::text[]) ORDER BY object_id COLLATE "C" LIMIT 1`,
    [objectIds],
  );
  return rows[0]?.customer_id ?? null;
}

/** Records links; returns the ids that were not linked before (the first link of an id wins). */
export async function addLinks(
  tx: SqlExecutor,
  tables: Tables,
  objectIds: string[],
  customerId: string,
): Promise<string[]> {
  if (objectIds.length === 0) return [];
  const rows = await tx.query<{ object_id: string }>(
    `INSERT INTO ${tables.links} (object_id, customer_id) SELECT unnest($1::text[]), $2
     ON CONFLICT (object_id) DO NOTHING RETURNING object_id`,
    [objectIds, customerId],
  );
  return rows.map((row) => row.object_id);
}

export async function routeEvents(
  tx: SqlExecutor,
  tables: Tables,
  eventIds: string[],
  customerId: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO ${tables.routes} (event_id, customer_id) SELECT unnest($1::text[]), $2 ON CONFLICT (event_id) DO NOTHING`,
    [eventIds, customerId],
  );
}

/**
 * The statement that records the outcomes `source` selects as (position, outcome, reason) in
 * `stripe_event_outcomes`: the live projector's and a replay's, so both leave an outcome decided again the
 * same alone (no new row version for nothing).
 */
export const recordOutcomes = (source: string) =>
  `INSERT INTO stripe_event_outcomes AS o (position, outcome, reason) ${source}
   ON CONFLICT (position) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, processed_at = now()
   WHERE (o.outcome, o.reason) IS DISTINCT FROM (EXCLUDED.outcome, EXCLUDED.reason)`;

/** A projection outcome decided for a log event (SPEC section 3: `outcome` + `reason`). */
export interface OutcomeUpdate {
  id: string;
  /** The event's log position, which keys its outcome row. */
  position: number;
  outcome: Outcome;
  reason: string | null;
  customerId: string | null;
}

/**
 * Writes what a fold produced in one statement (six data-modifying parts over disjoint rows, so none needs
 * to see another's effect): the customers' rows, subscriptions and entitlements, and the events' outcomes.
 * A statement is a round trip, and each cost the projector and PostgreSQL more than its rows did (`npm run
 * bench:profile`, BENCHMARKS.md).
 *
 * Subscriptions and entitlements are written only where they changed: the customer's rows that are gone
 * are deleted, the others upserted unless equal. Deleting and inserting them all again cost a dead row
 * version and index entries per row per batch, even when an event changed only an email (BENCHMARKS.md,
 * soak: 342,000 dead subscription rows for 1,000 live ones in twelve minutes without autovacuum).
 *
 * Outcomes go to `stripe_event_outcomes`, a narrow row per event beside the append-only log (see its
 * migration; an event without one is pending), whichever tables are written: a replay decides the live
 * log's outcomes.
 *
 * With `checkpoint` (the live projector's batch) the same statement writes the batch's feed rows, moves
 * the checkpoint to its head and announces it, returns the generation and the checkpoint's `xmin`, and
 * commits: two round trips fewer
 * between a webhook and its push.
 */
export async function saveFolded(
  tx: SqlExecutor,
  tables: Tables,
  customers: Array<{ state: CustomerState; view: BillingState }>,
  outcomes: OutcomeUpdate[],
): Promise<void>;
/** The live batch's end: the statement also commits its transaction (`queryAndCommit`). */
export async function saveFolded(
  tx: SqlTransaction,
  tables: Tables,
  customers: Array<{ state: CustomerState; view: BillingState }>,
  outcomes: OutcomeUpdate[],
  checkpoint: CheckpointMove,
): Promise<{ generation: number; checkpointXmin: string }>;
export async function saveFolded(
  tx: SqlExecutor,
  tables: Tables,
  customers: Array<{ state: CustomerState; view: BillingState }>,
  outcomes: OutcomeUpdate[],
  checkpoint?: CheckpointMove,
): Promise<{ generation: number; checkpointXmin: string } | void> {
  if (!checkpoint && customers.length === 0 && outcomes.length === 0) return;
  const ids = customers.map(({ state }) => state.customerId);
  const subscriptions = customers.flatMap(({ view }) =>
    view.subscriptions.map((subscription) => ({ customerId: view.customerId, subscription })),
  );
  // One row per key, the first, as the insert used to keep it.
  const byKey = new Map<string, { customerId: string; entitlement: BillingState['entitlements'][number] }>();
  for (const { view } of customers)
    for (const entitlement of view.entitlements) {
      const key = JSON.stringify([
        view.customerId,
        entitlement.feature,
        entitlement.source,
        entitlement.sourceId,
      ]);
      if (!byKey.has(key)) byKey.set(key, { customerId: view.customerId, entitlement });
    }
  const entitlements = [...byKey.values()];
  // Rows travel as JSON documents: arrays of JSON texts would be escaped by pg and unescaped by
  // PostgreSQL element by element, which cost more than the JSON itself.
  const entitle = `INSERT INTO ${tables.entitlements} AS e (customer_id, feature, source, source_id, until)
     SELECT * FROM entitlements
     ON CONFLICT (customer_id, feature, source, source_id) DO UPDATE SET until = EXCLUDED.until
     WHERE e.until IS DISTINCT FROM EXCLUDED.until`;
  const statement = checkpoint ? (tx as SqlTransaction).queryAndCommit.bind(tx) : tx.query.bind(tx);
  const rows = await statement<{ generation: string | number; xmin: string }>(
    `WITH customers AS (
       INSERT INTO ${tables.customers} (customer_id, user_id, email, deleted, state, view, version, updated_at)
       SELECT c.id, c.state->>'userId', c.state->>'email', (c.state->>'deleted')::boolean, c.state, c.view,
              (c.state->>'version')::bigint, now()
         FROM jsonb_to_recordset($1::jsonb) AS c(id text, state jsonb, view jsonb)
       ON CONFLICT (customer_id) DO UPDATE SET user_id = EXCLUDED.user_id, email = EXCLUDED.email,
         deleted = EXCLUDED.deleted, state = EXCLUDED.state, view = EXCLUDED.view, version = EXCLUDED.version,
         updated_at = now()),
     gone_subscriptions AS (
       DELETE FROM ${tables.subscriptions} WHERE customer_id = ANY($2::text[]) AND NOT subscription_id = ANY($4::text[])),
     subscriptions AS (
       INSERT INTO ${tables.subscriptions} AS t (subscription_id, customer_id, status, product_ids, view)
       SELECT s.view->>'id', s.view->>'customerId', s.view->>'status', s.products, s.view
         FROM jsonb_to_recordset($3::jsonb) AS s(products text[], view jsonb)
       ON CONFLICT (subscription_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
         product_ids = EXCLUDED.product_ids, view = EXCLUDED.view
       WHERE (t.customer_id, t.status, t.product_ids, t.view)
             IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.status, EXCLUDED.product_ids, EXCLUDED.view)),
     entitlements AS (
       SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
         AS n(customer_id, feature, source, source_id, until)),
     gone_entitlements AS (
       DELETE FROM ${tables.entitlements} AS e WHERE e.customer_id = ANY($2::text[]) AND NOT EXISTS (
         SELECT 1 FROM entitlements n
          WHERE (n.customer_id, n.feature, n.source, n.source_id) = (e.customer_id, e.feature, e.source, e.source_id))),
     outcomes AS (
       ${recordOutcomes('SELECT * FROM unnest($10::bigint[], $11::text[], $12::text[])')})
     ${checkpoint ? `, entitled AS (${entitle}), feed AS (${feedInsert(13, 14)}), ${moveCheckpoint(13, 15)}` : entitle}`,
    [
      JSON.stringify(customers.map(({ state, view }) => ({ id: state.customerId, state, view }))),
      ids,
      JSON.stringify(
        subscriptions.map(({ customerId, subscription }) => ({
          products: [...new Set(subscription.items.map((item) => item.productId).filter(Boolean))],
          view: { ...subscription, customerId },
        })),
      ),
      subscriptions.map(({ subscription }) => subscription.id),
      entitlements.map(({ customerId }) => customerId),
      entitlements.map(({ entitlement }) => entitlement.feature),
      entitlements.map(({ entitlement }) => entitlement.source),
      entitlements.map(({ entitlement }) => entitlement.sourceId),
      entitlements.map(({ entitlement }) => entitlement.until),
      outcomes.map((u) => u.position),
      outcomes.map((u) => u.outcome),
      outcomes.map((u) => u.reason),
      ...(checkpoint ? [checkpoint.position, feedDocument(checkpoint.feed), PROJECTION_CHANNEL] : []),
    ],
  );
  if (checkpoint) return { generation: Number(rows[0].generation), checkpointXmin: rows[0].xmin };
}

export async function readCheckpoint(tx: SqlExecutor, lock: boolean): Promise<number> {
  const [row] = await tx.query<{ position: string | number }>(
    `SELECT position FROM projector_checkpoints WHERE name = 'billing'${lock ? ' FOR UPDATE' : ''}`,
  );
  return Number(row.position);
}

/** Where each move of the checkpoint is announced to every instance's change feed. */
export const PROJECTION_CHANNEL = 'paywire_projection';

/** A row of `billing_feed`: a customer's new state, or a notable event it applied (project-batch.ts). */
export interface FeedRow {
  kind: 'state' | 'event';
  customerId: string;
  userId: string | null;
  payload: unknown;
}

/** A live batch's end: the checkpoint moves to its head, and its feed rows are keyed by it. */
export interface CheckpointMove {
  position: number;
  feed: FeedRow[];
}

/** A batch's feed rows, keyed by its head position `$<batch>`, from the JSON document `$<rows>`. */
const feedInsert = (batch: number, rows: number) =>
  `INSERT INTO billing_feed (batch, seq, kind, customer_id, user_id, payload)
   SELECT $${batch}, r.seq - 1, r.kind, r.customer_id, r.user_id, r.payload
     FROM ROWS FROM (jsonb_to_recordset($${rows}::jsonb) AS (kind text, customer_id text, user_id text, payload jsonb))
          WITH ORDINALITY AS r(kind, customer_id, user_id, payload, seq)`;

const feedDocument = (rows: FeedRow[]) =>
  JSON.stringify(
    rows.map((row) => ({
      kind: row.kind,
      customer_id: row.customerId,
      user_id: row.userId,
      payload: row.payload,
    })),
  );

/** Writes a batch's feed rows under its head position (a replay's catch-up, which moves no checkpoint). */
export async function insertFeed(tx: SqlExecutor, head: number, rows: FeedRow[]): Promise<void> {
  if (rows.length > 0) await tx.query(feedInsert(1, 2), [head, feedDocument(rows)]);
}

/**
 * The end of a statement that moves the checkpoint to `$<position>` and announces it to every instance
 * (`pg_notify` is delivered at commit) as `position:generation` on the channel `$<channel>`, and returns the
 * generation and the row's new `xmin` (the writing transaction). `rebuilt` (a replay's swap) also moves the generation, which makes every change feed push all
 * states again.
 */
const moveCheckpoint = (position: number, channel: number, rebuilt = false) =>
  `moved AS (
     UPDATE projector_checkpoints SET position = $${position}${rebuilt ? ', generation = generation + 1' : ''}
      WHERE name = 'billing' RETURNING position, generation, xmin::text AS xmin)
   SELECT pg_notify($${channel}, position || ':' || generation), generation, xmin FROM moved`;

/** Moves the checkpoint to `position` without writes of a batch (a replay's swap, with `rebuilt`). */
export async function writeCheckpoint(
  tx: SqlExecutor,
  position: number,
  options: { rebuilt?: boolean } = {},
): Promise<void> {
  await tx.query(`WITH ${moveCheckpoint(1, 2, options.rebuilt)}`, [position, PROJECTION_CHANNEL]);
}

/** A checkpoint announcement's `position:generation`, or null for anything else. */
export function parseFeedHead(payload: string | undefined): { position: number; generation: number } | null {
  const match = /^(\d+):(\d+)$/.exec(payload ?? '');
  return match ? { position: Number(match[1]), generation: Number(match[2]) } : null;
}

/** The checkpoint and the replay generation, as a change feed follows them. */
export async function readFeedHead(db: SqlExecutor): Promise<{ position: number; generation: number }> {
  const [row] = await db.query<{ position: string; generation: string }>(
    `SELECT position, generation FROM projector_checkpoints WHERE name = 'billing'`,
  );
  return { position: Number(row.position), generation: Number(row.generation) };
}
