/**
 * A replay's page, folded: the pure part of a rebuild. Each page holds a set of customers and all their
 * events up to the replay's head (as fold inputs, or whole payloads where the fold needs them); each
 * customer is folded once with the same core the live projector uses, and only the outcomes that differ
 * from the stored ones are kept, so a replay normally rewrites no outcome.
 */
import { billingState, type BillingState } from '../billing/billing-state.js';
import type { Catalog } from '../billing/catalog.js';
import { foldCustomer, type CustomerState } from '../billing/customer.js';
import type { LoggedEvent, Outcome } from '../billing/events.js';
import { foldInput } from '../billing/fold-input.js';
import type { ProductFeatures } from '../billing/products.js';
import type { OutcomeUpdate } from './projection-store.js';
import { toLoggedEvent, type EventRow } from '../event-log/log-reads.js';

export type PageRow = EventRow & {
  owner: string;
  outcome: Outcome;
  reason: string | null;
  outdated: boolean;
};

export interface Page {
  customers: string[];
  rows: PageRow[];
}

export interface FoldedPage {
  customers: Array<{ state: CustomerState; view: BillingState }>;
  /** Only the outcomes that differ from the stored ones: most are what the live projector wrote. */
  outcomes: OutcomeUpdate[];
  refreshed: Array<{ id: string; foldInput: string }>;
}

export function foldPage(page: Page, catalog: Catalog, products: ProductFeatures): FoldedPage {
  const byCustomer = new Map<string, LoggedEvent[]>();
  const stored = new Map<string, PageRow>();
  const refreshed: FoldedPage['refreshed'] = [];
  for (const row of page.rows) {
    const events = byCustomer.get(row.owner) ?? [];
    events.push(toLoggedEvent(row));
    byCustomer.set(row.owner, events);
    stored.set(row.id, row);
    if (row.outdated) refreshed.push({ id: row.id, foldInput: JSON.stringify(foldInput(row.payload)) });
  }
  const customers: FoldedPage['customers'] = [];
  const outcomes: OutcomeUpdate[] = [];
  for (const [customerId, events] of byCustomer) {
    const fold = foldCustomer(customerId, events);
    customers.push({ state: fold.state, view: billingState(fold.state, catalog, products) });
    for (const [id, { outcome, reason }] of fold.outcomes) {
      // Every event a customer's fold decides is a row of this page.
      const before = stored.get(id)!;
      if (before.outcome !== outcome || before.reason !== reason)
        outcomes.push({ id, position: Number(before.position), outcome, reason, customerId });
    }
  }
  return { customers, outcomes, refreshed };
}
