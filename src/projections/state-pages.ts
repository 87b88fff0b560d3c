/**
 * Pages of the billing state for the admin API (SPEC section 4): customers, subscriptions and who holds
 * which feature, read from the projection tables as keyset pages.
 */
import type { BillingState } from '../billing/billing-state.js';
import type { SqlExecutor } from '../database/database.js';
import { Where, decodeCursor, keysetPage, type Page } from '../database/keyset.js';

export async function listCustomers(
  db: SqlExecutor,
  filter: { email?: string; userId?: string; limit: number; cursor?: string },
): Promise<Page<BillingState>> {
  const after = decodeCursor(filter.cursor, ['text']);
  const where = new Where();
  if (filter.email) where.add(`lower(email) = lower(${where.param(filter.email)})`);
  if (filter.userId) where.add(`user_id = ${where.param(filter.userId)}`);
  if (after) where.add(`customer_id > ${where.param(after[0])}`);
  const rows = await db.query<{ customer_id: string; view: BillingState }>(
    `SELECT customer_id, view FROM billing_customers ${where} ORDER BY customer_id LIMIT ${where.param(filter.limit + 1)}`,
    where.params,
  );
  return keysetPage(
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
  const after = decodeCursor(filter.cursor, ['text']);
  const where = new Where();
  if (filter.status) where.add(`status = ${where.param(filter.status)}`);
  if (filter.customerId) where.add(`customer_id = ${where.param(filter.customerId)}`);
  if (after) where.add(`subscription_id > ${where.param(after[0])}`);
  const rows = await db.query<{ subscription_id: string; view: Record<string, unknown> }>(
    `SELECT subscription_id, view FROM billing_subscriptions ${where} ORDER BY subscription_id LIMIT ${where.param(filter.limit + 1)}`,
    where.params,
  );
  return keysetPage(
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
  const after = decodeCursor(filter.cursor, ['text', 'text', 'text', 'text']);
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
      ORDER BY customer_id, feature, source, source_id LIMIT ${where.param(filter.limit + 1)}`,
    where.params,
  );
  return keysetPage(
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
