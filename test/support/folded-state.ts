/**
 * What a customer's state must be: the billing core's pure fold of every event the log holds for them,
 * read straight from the database with their whole payloads (not through the readers, which hand the
 * projector fold inputs). Tests compare the live projections and replays against it.
 */
import { billingState, type BillingState } from '../../src/billing/billing-state.js';
import { EMPTY_CATALOG, type Catalog } from '../../src/billing/catalog.js';
import { foldCustomer } from '../../src/billing/customer.js';
import { foldProducts } from '../../src/billing/products.js';
import type { Sql } from '../../src/database/database.js';
import type { LoggedEvent } from '../../src/billing/events.js';
import { productEvents, toLoggedEvent, type EventRow } from '../../src/event-log/log-reads.js';

const EVERYTHING = { upTo: Number.MAX_SAFE_INTEGER };

/** The folded state, or null when the log holds nothing for the customer. */
export async function foldedState(
  sql: Sql,
  customerId: string,
  catalog: Catalog = EMPTY_CATALOG,
): Promise<BillingState | null> {
  const rows = await sql.query<EventRow>(
    `SELECT id, type, extract(epoch FROM created)::bigint AS created, position, payload FROM stripe_events
      WHERE customer_id = $1
         OR (customer_id IS NULL AND id IN (SELECT event_id FROM billing_event_routes WHERE customer_id = $1))
      ORDER BY position`,
    [customerId],
  );
  const events: LoggedEvent[] = rows.map(toLoggedEvent);
  if (events.length === 0) return null;
  const products = foldProducts(await productEvents(sql, EVERYTHING));
  return billingState(foldCustomer(customerId, events).state, catalog, products);
}
