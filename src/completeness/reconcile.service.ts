/**
 * `POST /admin/reconcile` and `paywire reconcile` (SPEC section 8): for one customer, or every customer in
 * the projections a page at a time, fetch Stripe's customer, subscriptions (`status=all`) and active
 * entitlements under the shared request-rate ceiling, report each drift by path, and with `repair` append
 * the snapshots that fix it (`source` `reconcile`), which the projector folds like any event.
 */
import { Inject, Injectable } from '@nestjs/common';
import type Stripe from 'stripe';
import { billingState } from '../billing/billing-state.js';
import type { Catalog } from '../billing/catalog.js';
import { emptyCustomer } from '../billing/customer.js';
import { SQL, type Sql } from '../database/database.js';
import { EventLog } from '../event-log/event-log.js';
import { eventToAppend } from '../ingest/stripe-webhook.js';
import { CATALOG } from '../projections/catalog.provider.js';
import { LIVE_TABLES, loadStatesAndProducts } from '../projections/projection-store.js';
import { STRIPE } from '../stripe-api/stripe-api.js';
import {
  compareStates,
  reconcileCustomer,
  snapshotEvents,
  type Drift,
  type StripeCustomerView,
} from './reconcile.js';
import { StripeApiNotConfigured } from './stripe-sync.js';

export interface ReconcileReport {
  checked: number;
  drifted: Drift[];
  /** Customers whose snapshots were appended. */
  repaired: number;
}

const PAGE = 100;

@Injectable()
export class ReconcileService {
  constructor(
    @Inject(SQL) private readonly sql: Sql,
    @Inject(STRIPE) private readonly stripe: Stripe | null,
    @Inject(CATALOG) private readonly catalog: Catalog,
    private readonly log: EventLog,
  ) {}

  async reconcile(options: { customerId?: string; repair?: boolean }): Promise<ReconcileReport> {
    if (!this.stripe) throw new StripeApiNotConfigured();
    const report: ReconcileReport = { checked: 0, drifted: [], repaired: 0 };
    for await (const customerId of this.customerIds(options.customerId)) {
      const { drifted, repaired } = await this.reconcileOne(this.stripe, customerId, options.repair === true);
      report.checked++;
      report.drifted.push(...drifted);
      if (repaired) report.repaired++;
    }
    return report;
  }

  private async *customerIds(only?: string): AsyncGenerator<string> {
    if (only) {
      yield only;
      return;
    }
    let after = '';
    for (;;) {
      const rows = await this.sql.query<{ customer_id: string }>(
        `SELECT customer_id FROM billing_customers WHERE customer_id > $1 ORDER BY customer_id LIMIT $2`,
        [after, PAGE],
      );
      for (const row of rows) yield row.customer_id;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1].customer_id;
    }
  }

  private async reconcileOne(
    stripe: Stripe,
    customerId: string,
    repair: boolean,
  ): Promise<{ drifted: Drift[]; repaired: boolean }> {
    const view = await fetchCustomerView(stripe, customerId);
    const loaded = await loadStatesAndProducts(this.sql, LIVE_TABLES, [customerId]);
    const projected = loaded.states.get(customerId);
    const products = loaded.products;
    const state = projected ?? emptyCustomer(customerId);
    const ours = billingState(state, this.catalog, products);
    if (!view) {
      const drift = { customerId, path: 'customer', paywire: projected ? 'present' : null, stripe: null };
      return { drifted: [drift], repaired: false };
    }
    const fetchedAt = Math.floor(Date.now() / 1000);
    const { expected, repairs } = reconcileCustomer(
      state,
      snapshotEvents(view, fetchedAt),
      this.catalog,
      products,
    );
    const drifted = compareStates(customerId, ours, expected);
    if (!repair || repairs.length === 0) return { drifted, repaired: false };
    await Promise.all(
      repairs.map((snapshot) =>
        this.log.appendEvent(eventToAppend(snapshot, JSON.stringify(snapshot), 'reconcile')),
      ),
    );
    return { drifted, repaired: true };
  }
}

/** Stripe's customer, all its subscriptions and its active entitlements; null when Stripe has no such customer. */
async function fetchCustomerView(stripe: Stripe, customerId: string): Promise<StripeCustomerView | null> {
  let customer: Stripe.Customer | Stripe.DeletedCustomer;
  try {
    customer = await stripe.customers.retrieve(customerId);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'resource_missing') return null;
    throw error;
  }
  if (customer.deleted) return { customer, subscriptions: [], entitlements: [] };
  const subscriptions: Stripe.Subscription[] = [];
  for await (const subscription of stripe.subscriptions.list({
    customer: customerId,
    status: 'all',
    limit: 100,
  })) {
    subscriptions.push(subscription);
  }
  const entitlements: Stripe.Entitlements.ActiveEntitlement[] = [];
  for await (const entitlement of stripe.entitlements.activeEntitlements.list({
    customer: customerId,
    limit: 100,
  })) {
    entitlements.push(entitlement);
  }
  return { customer, subscriptions, entitlements };
}
