/**
 * Reconcile's pure part (SPEC section 8): Stripe's current objects for a customer become snapshot events
 * (the customer, each subscription, the active entitlements) of the types the fold already applies
 * (`customer.updated`, `customer.subscription.updated`, `entitlements.active_entitlement_summary.updated`,
 * and `customer.deleted` for a deleted customer), dated at the fetch and with `pwsnap_…` ids that cannot
 * collide with Stripe's `evt_…`. Folding them onto the customer's state gives what the state would be if
 * Paywire's log were complete; every path where that differs from the projection is a drift, and the
 * snapshots that change something are the repair. Because the repair is ordinary log events, a replay
 * reproduces it.
 */
import { isDeepStrictEqual } from 'node:util';
import type Stripe from 'stripe';
import { billingState, type BillingState, type Entitlement } from '../billing/billing-state.js';
import type { Catalog } from '../billing/catalog.js';
import { evolveCustomer, type CustomerState } from '../billing/customer.js';
import type { ProductFeatures } from '../billing/products.js';
import { stripeEventEnvelope } from '../stripe-api/stripe-event.js';

export interface StripeCustomerView {
  customer: Stripe.Customer | Stripe.DeletedCustomer;
  subscriptions: Stripe.Subscription[];
  entitlements: Stripe.Entitlements.ActiveEntitlement[];
}

export interface Drift {
  customerId: string;
  path: string;
  paywire: unknown;
  stripe: unknown;
}

export function snapshotEvents(view: StripeCustomerView, fetchedAt: number): Stripe.Event[] {
  const customerId = view.customer.id;
  const snapshot = (type: string, objectId: string, object: object) =>
    stripeEventEnvelope({ id: `pwsnap_${fetchedAt}_${objectId}`, type, created: fetchedAt, object });
  if (view.customer.deleted) return [snapshot('customer.deleted', customerId, view.customer)];
  return [
    snapshot('customer.updated', customerId, view.customer),
    ...view.subscriptions.map((subscription) =>
      snapshot('customer.subscription.updated', subscription.id, subscription),
    ),
    snapshot('entitlements.active_entitlement_summary.updated', `${customerId}_entitlements`, {
      object: 'entitlements.active_entitlement_summary',
      customer: customerId,
      livemode: view.customer.livemode,
      entitlements: {
        object: 'list',
        data: view.entitlements,
        has_more: false,
        url: '/v1/customer/entitlements',
      },
    }),
  ];
}

export interface Reconciled {
  /** The state the customer would have with Stripe's objects folded in. */
  expected: BillingState;
  /** The snapshots that change the state: what `repair` appends. */
  repairs: Stripe.Event[];
}

/** Folds the snapshots onto the customer's folded state, keeping those that change what users see. */
export function reconcileCustomer(
  state: CustomerState,
  snapshots: Stripe.Event[],
  catalog: Catalog,
  products: ProductFeatures,
): Reconciled {
  let current = state;
  const repairs: Stripe.Event[] = [];
  for (const snapshot of snapshots) {
    const { state: next, outcome } = evolveCustomer(current, {
      id: snapshot.id,
      type: snapshot.type,
      created: snapshot.created,
      position: current.version + 1,
      payload: snapshot,
    });
    if (outcome !== 'applied') continue;
    const before = billingState(current, catalog, products);
    const after = billingState(next, catalog, products);
    if (compareStates(before.customerId, before, after).length === 0) continue;
    repairs.push(snapshot);
    current = next;
  }
  return { expected: billingState(current, catalog, products), repairs };
}

/**
 * The paths where two states of one customer differ, ignoring `version` and `asOf` (bookkeeping, not
 * billing). Subscriptions are keyed by id and entitlements by feature, source and source id, so one that
 * exists on one side only is one drift (`subscriptions[sub_…]`) rather than a shifted list.
 */
export function compareStates(customerId: string, paywire: BillingState, stripe: BillingState): Drift[] {
  const drifts: Drift[] = [];
  const compare = (path: string, a: unknown, b: unknown) => {
    // Key order does not count: a state read back from jsonb has its keys in jsonb's order.
    if (!isDeepStrictEqual(a ?? null, b ?? null)) {
      drifts.push({ customerId, path, paywire: a ?? null, stripe: b ?? null });
    }
  };
  compare('email', paywire.email, stripe.email);
  compare('userId', paywire.userId, stripe.userId);
  compare('deleted', paywire.deleted, stripe.deleted);
  const ours = new Map(paywire.subscriptions.map((subscription) => [subscription.id, subscription]));
  const theirs = new Map(stripe.subscriptions.map((subscription) => [subscription.id, subscription]));
  for (const id of [...new Set([...ours.keys(), ...theirs.keys()])].sort()) {
    const [a, b] = [ours.get(id), theirs.get(id)];
    if (!a || !b) {
      compare(`subscriptions[${id}]`, a, b);
      continue;
    }
    for (const field of ['status', 'items', 'currentPeriodEnd', 'cancelAtPeriodEnd', 'trialEnd'] as const) {
      compare(`subscriptions[${id}].${field}`, a[field], b[field]);
    }
  }
  const key = (entitlement: Entitlement) =>
    `entitlements[${entitlement.feature}/${entitlement.source}/${entitlement.sourceId}]`;
  const ourEntitlements = new Map(paywire.entitlements.map((entitlement) => [key(entitlement), entitlement]));
  const theirEntitlements = new Map(
    stripe.entitlements.map((entitlement) => [key(entitlement), entitlement]),
  );
  for (const path of [...new Set([...ourEntitlements.keys(), ...theirEntitlements.keys()])].sort()) {
    compare(path, ourEntitlements.get(path), theirEntitlements.get(path));
  }
  return drifts;
}
