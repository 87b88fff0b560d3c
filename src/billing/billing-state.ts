/**
 * A customer's billing state as users see it: the MQTT payload of SPEC section 6 and the admin API's
 * answer. Entitlements are derived here, from the folded customer, the catalog and product features, so
 * a catalog change or a `product.updated` is reflected without re-folding anyone's events.
 */
import type { Catalog } from './catalog.js';
import type { CustomerState, SubscriptionState } from './customer.js';
import type { ProductFeatures } from './products.js';

export interface Entitlement {
  feature: string;
  source: 'subscription' | 'purchase' | 'stripe';
  sourceId: string;
  until: string | null;
}

export interface BillingState {
  customerId: string;
  userId: string | null;
  email: string | null;
  deleted: boolean;
  entitlements: Entitlement[];
  subscriptions: Array<{
    id: string;
    status: string;
    items: SubscriptionState['items'];
    currentPeriodEnd: string | null;
    cancelAtPeriodEnd: boolean;
    trialEnd: string | null;
  }>;
  payment: {
    status: 'ok' | 'past_due' | 'action_required' | 'disputed';
    lastInvoiceId: string | null;
    lastError: string | null;
  };
  purchases: Array<{
    checkoutSessionId: string;
    status: string;
    amountTotal: number | null;
    currency: string | null;
    features: string[];
  }>;
  version: number;
  asOf: string | null;
}

export function isoSeconds(seconds: number | null): string | null {
  return seconds === null ? null : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function union(...lists: Array<string[] | undefined>): string[] {
  return [...new Set(lists.flatMap((list) => list ?? []))].sort();
}

export function subscriptionFeatures(
  subscription: SubscriptionState,
  catalog: Catalog,
  products: ProductFeatures,
): string[] {
  return union(
    ...subscription.items.flatMap((item) => [
      item.priceId ? catalog.prices[item.priceId] : undefined,
      item.lookupKey ? catalog.lookupKeys[item.lookupKey] : undefined,
      item.productId ? catalog.products[item.productId] : undefined,
      item.productId ? products[item.productId] : undefined,
    ]),
  );
}

export function deriveEntitlements(
  state: CustomerState,
  catalog: Catalog,
  products: ProductFeatures,
): Entitlement[] {
  // customer.deleted revokes everything (SPEC section 5).
  if (state.deleted) return [];
  const entitlements: Entitlement[] = [];
  for (const subscription of Object.values(state.subscriptions)) {
    if (!catalog.grantStatuses.includes(subscription.status)) continue;
    for (const feature of subscriptionFeatures(subscription, catalog, products)) {
      entitlements.push({
        feature,
        source: 'subscription',
        sourceId: subscription.id,
        until: isoSeconds(subscription.currentPeriodEnd),
      });
    }
  }
  for (const purchase of Object.values(state.purchases)) {
    if (purchase.status !== 'paid') continue;
    for (const feature of purchase.plan ? (catalog.plans[purchase.plan] ?? []) : []) {
      entitlements.push({ feature, source: 'purchase', sourceId: purchase.checkoutSessionId, until: null });
    }
  }
  for (const { lookupKey, entitlementId } of state.stripeEntitlements) {
    entitlements.push({ feature: lookupKey, source: 'stripe', sourceId: entitlementId, until: null });
  }
  return entitlements.sort(
    (a, b) =>
      a.feature.localeCompare(b.feature) ||
      a.source.localeCompare(b.source) ||
      a.sourceId.localeCompare(b.sourceId),
  );
}

export function billingState(
  state: CustomerState,
  catalog: Catalog,
  products: ProductFeatures,
): BillingState {
  const { payment } = state;
  return {
    customerId: state.customerId,
    userId: state.userId,
    email: state.email,
    deleted: state.deleted,
    entitlements: deriveEntitlements(state, catalog, products),
    subscriptions: Object.values(state.subscriptions)
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((subscription) => ({
        id: subscription.id,
        status: subscription.status,
        items: subscription.items,
        currentPeriodEnd: isoSeconds(subscription.currentPeriodEnd),
        cancelAtPeriodEnd: subscription.cancelAtPeriodEnd,
        trialEnd: isoSeconds(subscription.trialEnd),
      })),
    payment: {
      status: payment.openDisputes.length > 0 ? 'disputed' : payment.invoiceStatus,
      lastInvoiceId: payment.lastInvoiceId,
      lastError: payment.lastError,
    },
    purchases: Object.values(state.purchases)
      .sort((a, b) => a.checkoutSessionId.localeCompare(b.checkoutSessionId))
      .map((purchase) => ({
        checkoutSessionId: purchase.checkoutSessionId,
        status: purchase.status,
        amountTotal: purchase.amountTotal,
        currency: purchase.currency,
        features: purchase.plan ? [...(catalog.plans[purchase.plan] ?? [])].sort() : [],
      })),
    version: state.version,
    asOf: state.lastCreated ? isoSeconds(state.lastCreated) : null,
  };
}
