/**
 * Folding a batch of log events into projection tables, inside the caller's transaction. The live
 * projector and the replay both call `projectBatch`, and it calls the billing core, so all three paths
 * produce the same state.
 *
 * The steps (`BATCH_STEPS`), each over the whole batch in log position order: route each event to a
 * customer (directly, or through a link an earlier event made); evolve that customer's state by the
 * events newer than everything it reflects, or mark the customer for a re-fold (the event is late, or
 * shares a second with what is already folded, where the causal rank may reorder it); re-fold the marked
 * customers, from the customer's open second when the batch knows it and the late events are in it (the
 * live projector keeps those between its batches: `OpenSeconds`), or else from the log; re-fold the product
 * features on a product event and re-derive the entitlements of every customer holding a changed product.
 * The core marks an event it cannot read `failed` and leaves the state as it was: a poison event does not
 * stop the others.
 */
import { isDeepStrictEqual } from 'node:util';
import { billingState, type BillingState } from '../billing/billing-state.js';
import type { Catalog } from '../billing/catalog.js';
import { notableEvent } from '../billing/notable.js';
import {
  emptyCustomer,
  evolveCustomer,
  foldCustomer,
  foldIntoOpenSecond,
  unroutedOutcome,
  type CustomerFold,
  type CustomerState,
  type OpenSecond,
} from '../billing/customer.js';
import type { LoggedEvent } from '../billing/events.js';
import { isProductEventType } from '../billing/event-types.js';
import { isFoldInput } from '../billing/fold-input.js';
import { comparedEvents } from '../billing/fold-order.js';
import { foldProducts, type ProductFeatures } from '../billing/products.js';
import { routeLoggedEvent } from '../billing/routing.js';
import type { SqlExecutor, SqlTransaction } from '../database/database.js';
import { customerEvents, productEvents, unroutedEvents, wholePayloads } from '../event-log/log-reads.js';
import {
  addLinks,
  customersHoldingProducts,
  loadCustomerStates,
  loadStatesAndProducts,
  resolveLinks,
  saveFolded,
  routeEvents,
  saveProducts,
  type FeedRow,
  type OutcomeUpdate,
  type Prefetched,
  type Tables,
} from './projection-store.js';

export interface BatchResult {
  /** The new state of every customer this batch changed. */
  changed: BillingState[];
  outcomes: OutcomeUpdate[];
}

/** A customer's open second, and the version of the state it folds to. */
export interface KnownSecond {
  open: OpenSecond;
  version: number;
}

/** A live batch's result: it also moved the checkpoint to its head, with these feed rows. */
export interface CommittedBatch extends BatchResult {
  feed: FeedRow[];
  /** The replay generation the checkpoint was in. */
  generation: number;
  /** The checkpoint row's new `xmin`: this batch's transaction. */
  checkpointXmin: string;
  /** The open second of each customer the batch folded; null where it does not know one. */
  openSeconds: Map<string, KnownSecond | null>;
}

/**
 * What a batch changed, as rows of `billing_feed` (written in its transaction, keyed by the batch's head
 * position): the new state of each customer (SPEC section 6, `…/state`), then the notable events it
 * applied (`…/events`), in log order. Every instance's change feed publishes these rows, in key order. A
 * replay's catch-up records only the notable events (`states: false`) of the events past the live
 * checkpoint (`after`): it pushes every state after its swap.
 */
export function feedRows(
  events: readonly LoggedEvent[],
  result: BatchResult,
  options: { states?: boolean; after?: number } = {},
): FeedRow[] {
  const userIds = new Map(result.changed.map((state) => [state.customerId, state.userId]));
  const outcomes = new Map(result.outcomes.map((outcome) => [outcome.id, outcome]));
  const rows: FeedRow[] = (options.states === false ? [] : result.changed).map((state) => ({
    kind: 'state',
    customerId: state.customerId,
    userId: state.userId,
    payload: state,
  }));
  for (const event of events) {
    if (options.after !== undefined && event.position <= options.after) continue;
    const outcome = outcomes.get(event.id);
    const notable = outcome?.outcome === 'applied' && outcome.customerId ? notableEvent(event) : null;
    if (notable && outcome?.customerId) {
      rows.push({
        kind: 'event',
        customerId: outcome.customerId,
        userId: userIds.get(outcome.customerId) ?? null,
        payload: notable,
      });
    }
  }
  return rows;
}

/**
 * Compares two folded states, ignoring the bookkeeping that every event moves. Deep equality, not JSON
 * text: a state read back from jsonb has its keys in PostgreSQL's order, not the order they were written.
 */
function sameBilling(a: CustomerState, b: CustomerState): boolean {
  const strip = ({ version: _v, lastCreated: _c, ...rest }: CustomerState) => rest;
  return isDeepStrictEqual(strip(a), strip(b));
}

/** What a batch works on, handed from step to step. */
interface Batch {
  tx: SqlExecutor;
  tables: Tables;
  events: readonly LoggedEvent[];
  catalog: Catalog;
  /** The position of the batch's last event: nothing after it is read. */
  upTo: number;
  inBatch: Set<string>;
  /** Event id to customer, for the batch's events and for older ones a link made in it routes. */
  routed: Map<string, string>;
  states: Map<string, CustomerState>;
  /** Customers re-folded from the log, with the late events that caused it. */
  refold: Set<string>;
  lateEvents: Map<string, string[]>;
  products: ProductFeatures;
  outcomes: Map<string, OutcomeUpdate>;
  /** States and products the live batch's read brought with its events, if it could. */
  prefetched: Prefetched | null;
  /** Open seconds known from earlier batches, each used only for a state of the version it folds to. */
  known: ReadonlyMap<string, KnownSecond>;
  /** The open second of each customer whose state the batch holds, as far as it knows one. */
  openSeconds: Map<string, OpenSecond>;
}

/** The steps of projecting a batch, in order, like Aedes's handlers: each reads and extends the batch. */
const BATCH_STEPS: ReadonlyArray<(batch: Batch) => Promise<void>> = [
  routeToCustomers,
  evolveInLogOrder,
  refoldLateCustomers,
  applyProductFeatures,
];

export async function projectBatch(
  tx: SqlExecutor,
  tables: Tables,
  events: readonly LoggedEvent[],
  catalog: Catalog,
): Promise<BatchResult>;
/**
 * The live projector's batch, which ends by moving the checkpoint in the statement that writes the fold,
 * and commits with it.
 */
export async function projectBatch(
  tx: SqlTransaction,
  tables: Tables,
  events: readonly LoggedEvent[],
  catalog: Catalog,
  options: {
    moveCheckpoint: true;
    prefetched: Prefetched | null;
    openSeconds: ReadonlyMap<string, KnownSecond>;
  },
): Promise<CommittedBatch>;
export async function projectBatch(
  tx: SqlExecutor,
  tables: Tables,
  events: readonly LoggedEvent[],
  catalog: Catalog,
  options: {
    moveCheckpoint?: boolean;
    prefetched?: Prefetched | null;
    openSeconds?: ReadonlyMap<string, KnownSecond>;
  } = {},
): Promise<BatchResult | CommittedBatch> {
  if (events.length === 0) return { changed: [], outcomes: [] };
  const batch: Batch = {
    tx,
    tables,
    events,
    catalog,
    upTo: events[events.length - 1].position,
    inBatch: new Set(events.map((event) => event.id)),
    routed: new Map(),
    states: new Map(),
    refold: new Set(),
    lateEvents: new Map(),
    products: {},
    outcomes: new Map(),
    prefetched: options.prefetched ?? null,
    known: options.openSeconds ?? new Map(),
    openSeconds: new Map(),
  };
  for (const step of BATCH_STEPS) await step(batch);
  return saveBatch(batch, options.moveCheckpoint ? (tx as SqlTransaction) : null);
}

/**
 * Routes every event before any is folded, in log order: links made in this batch route later events of
 * the same batch, and older events that were waiting for such a link. What reaches no customer gets its
 * outcome here (`unroutedOutcome`).
 */
async function routeToCustomers(batch: Batch): Promise<void> {
  const { tx, tables, routed, outcomes } = batch;
  for (const event of batch.events) {
    if (isProductEventType(event.type)) continue;
    const routing = routeLoggedEvent(event);
    let customerId = routing.customerId;
    if (!customerId) {
      customerId = await resolveLinks(tx, tables, routing.references);
      if (customerId) await routeEvents(tx, tables, [event.id], customerId);
    }
    if (customerId && routing.links.length > 0) {
      const fresh = await addLinks(tx, tables, routing.links, customerId);
      const waiting = fresh.length > 0 ? await unroutedEvents(tx, tables.routes, fresh, event.position) : [];
      if (waiting.length > 0) {
        await routeEvents(
          tx,
          tables,
          waiting.map((e) => e.id),
          customerId,
        );
        for (const e of waiting) if (!routed.has(e.id)) routed.set(e.id, customerId);
      }
    }
    if (customerId) {
      routed.set(event.id, customerId);
    } else {
      outcomes.set(event.id, {
        id: event.id,
        position: event.position,
        ...unroutedOutcome(event.type),
        customerId: null,
      });
    }
  }
}

/**
 * Evolves each customer's stored state by the batch's events that are newer than everything it reflects.
 * An event at or before the state's latest second marks the customer for a re-fold instead: it is late,
 * or shares a second with what is folded, where the causal rank may reorder it. Each evolution opens the
 * event's second. A failed event leaves the state as it was, and with it the state's latest second, so the
 * customer's open second is then unknown here: a re-fold reads the log, which holds the failed event.
 * The product features are read with the states, one round trip for both, unless the batch's read
 * brought them.
 */
async function evolveInLogOrder(batch: Batch): Promise<void> {
  const { states, refold, lateEvents } = batch;
  const customerIds = [...new Set(batch.routed.values())];
  const loaded = await statesAndProducts(batch, customerIds);
  for (const [id, state] of loaded.states) {
    states.set(id, state);
    const known = batch.known.get(id);
    if (known?.version === state.version) batch.openSeconds.set(id, known.open);
  }
  batch.products = loaded.products;
  for (const event of batch.events) {
    const customerId = batch.routed.get(event.id);
    if (!customerId) continue;
    const state = states.get(customerId) ?? emptyCustomer(customerId);
    // An open second past the state's latest holds only events that failed; what follows them in it is
    // folded with them, as the log would fold it.
    const joinsFailed = batch.openSeconds.get(customerId)?.created === event.created;
    if (refold.has(customerId) || (state.version > 0 && event.created <= state.lastCreated) || joinsFailed) {
      refold.add(customerId);
      lateEvents.set(customerId, [...(lateEvents.get(customerId) ?? []), event.id]);
      continue;
    }
    const evolution = evolveCustomer(state, event);
    states.set(customerId, evolution.state);
    if (evolution.outcome === 'failed') batch.openSeconds.delete(customerId);
    else batch.openSeconds.set(customerId, { created: event.created, before: state, events: [event] });
    batch.outcomes.set(event.id, {
      id: event.id,
      position: event.position,
      outcome: evolution.outcome,
      reason: evolution.reason ?? null,
      customerId,
    });
  }
  // Events routed through a link made in this batch may predate it: their customers are re-folded too.
  for (const [eventId, customerId] of batch.routed) {
    if (!batch.inBatch.has(eventId)) refold.add(customerId);
  }
}

/**
 * The stored states of `ids` and the product features: those the live batch's read brought, and a read of
 * any customer it did not name (one routed through a link).
 */
async function statesAndProducts(
  batch: Batch,
  ids: string[],
): Promise<{ states: Map<string, CustomerState>; products: ProductFeatures }> {
  const prefetched = batch.prefetched;
  if (!prefetched) return loadStatesAndProducts(batch.tx, batch.tables, ids);
  const states = new Map<string, CustomerState>();
  for (const id of ids) {
    const state = prefetched.states.get(id);
    if (state) states.set(id, state);
  }
  const unnamed = ids.filter((id) => !prefetched.named.has(id));
  for (const [id, state] of await loadCustomerStates(batch.tx, batch.tables, unnamed)) states.set(id, state);
  return { states, products: prefetched.products };
}

/**
 * Re-folds each marked customer, and records the late and newly linked events' outcomes. When all of the
 * customer's late events fall in its open second or after it, the fold resumes in the open second, after a
 * read of the whole payloads of the events the causal rank compares there, if it holds any as fold inputs
 * (by position: a payload or two, where the history was every event of the customer). Otherwise it reads
 * the customer's history. Either way one read per customer at most, not one for all: between the reads,
 * the webhooks waiting on this process's event loop run. One read of every history (tried), or of every
 * resumed customer's payloads (tried), left fewer statements but one long stretch of parsing and folding:
 * at 64 senders the webhooks' throughput fell by a tenth to a fifth with less CPU per event (BENCHMARKS.md).
 */
async function refoldLateCustomers(batch: Batch): Promise<void> {
  const { states, routed, inBatch } = batch;
  const linked = new Set([...routed].filter(([id]) => !inBatch.has(id)).map(([, customerId]) => customerId));
  for (const customerId of batch.refold) {
    const previous = states.get(customerId) ?? emptyCustomer(customerId);
    const lateIds = new Set(batch.lateEvents.get(customerId));
    const late = batch.events.filter((event) => lateIds.has(event.id));
    const open = batch.openSeconds.get(customerId);
    let fold: CustomerFold;
    let history: readonly LoggedEvent[];
    if (open && !linked.has(customerId) && late.every((event) => event.created >= open.created)) {
      const cut = comparedEvents([...open.events, ...late]).filter((event) => isFoldInput(event.payload));
      const whole = await wholePayloads(
        batch.tx,
        cut.map((event) => event.position),
      );
      const read = (event: LoggedEvent): LoggedEvent => {
        const payload = whole.get(event.position);
        return payload ? { ...event, payload } : event;
      };
      history = late.map(read);
      fold = foldIntoOpenSecond({ ...open, events: open.events.map(read) }, history);
    } else {
      history = await customerEvents(batch.tx, batch.tables.routes, customerId, { upTo: batch.upTo });
      fold = foldCustomer(customerId, history);
    }
    states.set(customerId, fold.state);
    if (fold.open) batch.openSeconds.set(customerId, fold.open);
    else batch.openSeconds.delete(customerId);
    const unchanged = sameBilling(previous, fold.state);
    for (const event of history) {
      const isLate = lateIds.has(event.id);
      const linkedNow = routed.get(event.id) === customerId && !inBatch.has(event.id);
      if (!isLate && !linkedNow) continue;
      const { outcome, reason } = fold.outcomes.get(event.id) ?? { outcome: 'ignored', reason: null };
      // An older event that changes nothing is stale for the rows it touches (SPEC section 3).
      const superseded = isLate && unchanged && outcome === 'applied';
      batch.outcomes.set(event.id, {
        id: event.id,
        position: event.position,
        outcome: superseded ? 'stale' : outcome,
        reason: superseded ? 'older than the state it would change' : reason,
        customerId,
      });
    }
  }
}

/**
 * Product features apply to every customer holding the product, from that event on: a product event
 * re-folds the features, and every holder of a changed product has its entitlements re-derived.
 */
async function applyProductFeatures(batch: Batch): Promise<void> {
  const { tx, tables, states } = batch;
  const productUpdates = batch.events.filter((event) => isProductEventType(event.type));
  if (productUpdates.length === 0) return;
  const reviewed = new Set(states.keys());
  const previous = batch.products;
  const next = foldProducts(await productEvents(tx, { upTo: batch.upTo }));
  const changedProducts = [...new Set([...Object.keys(previous), ...Object.keys(next)])].filter(
    (id) => JSON.stringify(previous[id] ?? []) !== JSON.stringify(next[id] ?? []),
  );
  batch.products = next;
  await saveProducts(tx, tables, next);
  for (const event of productUpdates)
    batch.outcomes.set(event.id, {
      id: event.id,
      position: event.position,
      outcome: 'applied',
      reason: null,
      customerId: null,
    });
  const holders = (await customersHoldingProducts(tx, tables, changedProducts)).filter(
    (id) => !reviewed.has(id),
  );
  for (const [id, state] of await loadCustomerStates(tx, tables, holders)) states.set(id, state);
}

/** Writes the batch; with `live`, the live batch's transaction, also moves the checkpoint and commits. */
async function saveBatch(batch: Batch, live: SqlTransaction | null): Promise<BatchResult | CommittedBatch> {
  const changed = [...batch.states.values()].map((state) => ({
    state,
    view: billingState(state, batch.catalog, batch.products),
  }));
  const result = { changed: changed.map(({ view }) => view), outcomes: [...batch.outcomes.values()] };
  if (!live) {
    await saveFolded(batch.tx, batch.tables, changed, result.outcomes);
    return result;
  }
  const feed = feedRows(batch.events, result);
  const { generation, checkpointXmin } = await saveFolded(live, batch.tables, changed, result.outcomes, {
    position: batch.upTo,
    feed,
  });
  const openSeconds = new Map<string, KnownSecond | null>();
  for (const [id, state] of batch.states) {
    const open = batch.openSeconds.get(id);
    openSeconds.set(id, open ? { open, version: state.version } : null);
  }
  return { ...result, feed, generation, checkpointXmin, openSeconds };
}
