/**
 * What a customer's state must be: the billing core's pure fold of every event the log holds for them,
 * read straight from the database. Tests compare the live projections and replays against it.
 */
import { billingState, type BillingState } from '../../src/billing/billing-state.js';
import { EMPTY_CATALOG, type Catalog } from '../../src/billing/catalog.js';
import { foldCustomer } from '../../src/billing/customer.js';
import { foldProducts } from '../../src/billing/products.js';
import type { Sql } from '../../src/database/database.js';
import { customerEvents, productEvents } from '../../src/event-log/log-reads.js';
import { LIVE_TABLES } from '../../src/projections/projection-store.js';

const EVERYTHING = { upTo: Number.MAX_SAFE_INTEGER };

/** The folded state, or null when the log holds nothing for the customer. */
export async function foldedState(
  sql: Sql,
  customerId: string,
  catalog: Catalog = EMPTY_CATALOG,
): Promise<BillingState | null> {
  const events = await customerEvents(sql, LIVE_TABLES.routes, customerId, EVERYTHING);
  if (events.length === 0) return null;
  const products = foldProducts(await productEvents(sql, EVERYTHING));
  return billingState(foldCustomer(customerId, events).state, catalog, products);
}
