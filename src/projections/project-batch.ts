/**
 * Folding a batch of log events into projection tables, inside the caller's transaction. The live
 * projector and the replay both call `projectBatch`, and it calls the billing core, so all three paths
 * produce the same state.
 *
 * Steps for each event, in log position order: route it to a customer (directly, or through a link an
 * earlier event made); then either evolve that customer's state (the event is newer than everything the
 * state reflects) or mark the customer for a re-fold from the log (the event is late, or shares a second
 * with what is already folded, where the causal rank may reorder it). A product event re-folds the product
 * features and re-derives the entitlements of every customer holding the product. The core marks an event
 * it cannot read `failed` and leaves the state as it was: a poison event does not stop the others.
 */
import { isDeepStrictEqual } from 'node:util';
import { billingState, type BillingState } from '../billing/billing-state.js';
import type { Catalog } from '../billing/catalog.js';
import {
  emptyCustomer,
  evolveCustomer,
  foldCustomer,
  unroutedOutcome,
  type CustomerState,
} from '../billing/customer.js';
import type { LoggedEvent } from '../billing/events.js';
import { isProductEventType } from '../billing/event-types.js';
import { foldProducts } from '../billing/products.js';
import { routeLoggedEvent } from '../billing/routing.js';
import type { SqlExecutor } from '../database/database.js';
import {
  addLinks,
  customersHoldingProducts,
  loadCustomerEvents,
  loadCustomerStates,
  loadProductEvents,
  loadProducts,
  resolveLinks,
  saveCustomers,
  saveOutcomes,
  routeEvents,
  saveProducts,
  unroutedEvents,
  type OutcomeUpdate,
  type Tables,
} from './projection-store.js';

export interface BatchResult {
  /** The new state of every customer this batch changed, for publishing after the commit. */
  changed: BillingState[];
  outcomes: OutcomeUpdate[];
}

/**
 * Compares two folded states, ignoring the bookkeeping that every event moves. Deep equality, not JSON
 * text: a state read back from jsonb has its keys in PostgreSQL's order, not the order they were written.
 */
function sameBilling(a: CustomerState, b: CustomerState): boolean {
  const strip = ({ version: _v, lastCreated: _c, ...rest }: CustomerState) => rest;
  return isDeepStrictEqual(strip(a), strip(b));
}

export async function projectBatch(
  tx: SqlExecutor,
  tables: Tables,
  events: readonly LoggedEvent[],
  catalog: Catalog,
): Promise<BatchResult> {
  if (events.length === 0) return { changed: [], outcomes: [] };
  const upTo = events[events.length - 1].position;
  const outcomes = new Map<string, OutcomeUpdate>();
  const routed = new Map<string, string>();
  const customerIds = new Set<string>();
  const inBatch = new Set(events.map((event) => event.id));

  // Route every event first: links made in this batch route later events of the same batch.
  for (const event of events) {
    if (isProductEventType(event.type)) continue;
    const routing = routeLoggedEvent(event);
    let customerId = routing.customerId;
    if (!customerId) {
      customerId = await resolveLinks(tx, tables, routing.references);
      if (customerId) await routeEvents(tx, tables, [event.id], customerId);
    }
    if (customerId && routing.links.length > 0) {
      const fresh = await addLinks(tx, tables, routing.links, customerId);
      const waiting = fresh.length > 0 ? await unroutedEvents(tx, tables, fresh, upTo) : [];
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
      customerIds.add(customerId);
    } else {
      outcomes.set(event.id, { id: event.id, ...unroutedOutcome(event.type), customerId: null });
    }
  }

  const states = await loadCustomerStates(tx, tables, [...customerIds]);
  const refold = new Set<string>();
  const lateEvents = new Map<string, string[]>();
  for (const event of events) {
    const customerId = routed.get(event.id);
    if (!customerId) continue;
    const state = states.get(customerId) ?? emptyCustomer(customerId);
    if (refold.has(customerId) || (state.version > 0 && event.created <= state.lastCreated)) {
      refold.add(customerId);
      lateEvents.set(customerId, [...(lateEvents.get(customerId) ?? []), event.id]);
      continue;
    }
    const evolution = evolveCustomer(state, event);
    states.set(customerId, evolution.state);
    outcomes.set(event.id, {
      id: event.id,
      outcome: evolution.outcome,
      reason: evolution.reason ?? null,
      customerId,
    });
  }
  // Events routed through a link made in this batch may predate it: their customers are re-folded too.
  for (const [eventId, customerId] of routed) {
    if (!inBatch.has(eventId)) refold.add(customerId);
  }

  for (const customerId of refold) {
    const previous = states.get(customerId) ?? emptyCustomer(customerId);
    const history = await loadCustomerEvents(tx, tables, customerId, { upTo });
    const fold = foldCustomer(customerId, history);
    states.set(customerId, fold.state);
    const unchanged = sameBilling(previous, fold.state);
    for (const event of history) {
      const late = lateEvents.get(customerId)?.includes(event.id);
      const linkedNow = routed.get(event.id) === customerId && !inBatch.has(event.id);
      if (!late && !linkedNow) continue;
      const { outcome, reason } = fold.outcomes.get(event.id) ?? { outcome: 'ignored', reason: null };
      // An older event that changes nothing is stale for the rows it touches (SPEC section 3).
      const superseded = late && unchanged && outcome === 'applied';
      outcomes.set(event.id, {
        id: event.id,
        outcome: superseded ? 'stale' : outcome,
        reason: superseded ? 'older than the state it would change' : reason,
        customerId,
      });
    }
  }

  // Product features apply to every customer holding the product, from that event on.
  const productEvents = events.filter((event) => isProductEventType(event.type));
  let products = await loadProducts(tx, tables);
  const reviewed = new Set(states.keys());
  if (productEvents.length > 0) {
    const next = foldProducts(await loadProductEvents(tx, { upTo }));
    const changedProducts = [...new Set([...Object.keys(products), ...Object.keys(next)])].filter(
      (id) => JSON.stringify(products[id] ?? []) !== JSON.stringify(next[id] ?? []),
    );
    products = next;
    await saveProducts(tx, tables, products);
    for (const event of productEvents)
      outcomes.set(event.id, { id: event.id, outcome: 'applied', reason: null, customerId: null });
    const holders = (await customersHoldingProducts(tx, tables, changedProducts)).filter(
      (id) => !reviewed.has(id),
    );
    for (const [id, state] of await loadCustomerStates(tx, tables, holders)) states.set(id, state);
  }

  const changed = [...states.values()].map((state) => ({
    state,
    view: billingState(state, catalog, products),
  }));
  await saveCustomers(tx, tables, changed);
  const updates = [...outcomes.values()];
  await saveOutcomes(tx, updates);
  return { changed: changed.map(({ view }) => view), outcomes: updates };
}
