/**
 * Reading customers' billing state: the current projection (one customer, or a page of them), or the
 * state as of a past instant, folded from the log with the same billing core the projector uses (SPEC
 * section 4, `?asOf=`).
 */
import { Inject, Injectable } from '@nestjs/common';
import { billingState, type BillingState } from '../billing/billing-state.js';
import type { Catalog } from '../billing/catalog.js';
import { foldCustomer } from '../billing/customer.js';
import { SQL, type Sql } from '../database/database.js';
import { CATALOG } from './catalog.provider.js';
import { foldProducts } from '../billing/products.js';
import { customerEvents, productEvents } from '../event-log/log-reads.js';
import { LIVE_TABLES } from './projection-store.js';

@Injectable()
export class CustomerStateQuery {
  constructor(
    @Inject(SQL) private readonly sql: Sql,
    @Inject(CATALOG) private readonly catalog: Catalog,
  ) {}

  async current(customerId: string): Promise<BillingState | null> {
    const [row] = await this.sql.query<{ view: BillingState }>(
      `SELECT view FROM billing_customers WHERE customer_id = $1`,
      [customerId],
    );
    return row?.view ?? null;
  }

  /** A page of current states in customer id order, after `afterCustomerId` ('' for the first page). */
  async page(afterCustomerId: string, limit: number): Promise<BillingState[]> {
    const rows = await this.sql.query<{ view: BillingState }>(
      `SELECT view FROM billing_customers WHERE customer_id > $1 ORDER BY customer_id LIMIT $2`,
      [afterCustomerId, limit],
    );
    return rows.map((row) => row.view);
  }

  /** The state folded from the customer's events with `created` at or before `asOf`. */
  async asOf(customerId: string, asOf: Date): Promise<BillingState | null> {
    const seconds = Math.floor(asOf.getTime() / 1000);
    const events = await customerEvents(this.sql, LIVE_TABLES.routes, customerId, { asOf: seconds });
    if (events.length === 0) return null;
    const products = foldProducts(await productEvents(this.sql, { asOf: seconds }));
    return billingState(foldCustomer(customerId, events).state, this.catalog, products);
  }
}
