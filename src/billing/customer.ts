/**
 * The billing core: `evolveCustomer(state, event) -> state` and `foldCustomer(events)`, pure functions of
 * the Stripe events of one customer (SPEC section 5). The live projector, the replay and the `asOf` query
 * all call `foldCustomer`/`evolveCustomer`, so they cannot disagree; the live projector also resumes a fold
 * within its latest second (`foldIntoOpenSecond`), which the fold order makes the same fold. Each event also gets an outcome:
 * `applied`, `stale` (a terminal snapshot it may not undo), or `ignored` (a type the fold does not handle).
 */
import { isCustomerEventType, type CustomerEventType } from './event-types.js';
import { dataObject, idOf, type LoggedEvent, type Outcome, type StripeObject } from './events.js';
import { sortForFold } from './fold-order.js';

export interface SubscriptionItemState {
  priceId: string | null;
  productId: string | null;
  lookupKey: string | null;
  quantity: number;
}

export interface SubscriptionState {
  id: string;
  status: string;
  items: SubscriptionItemState[];
  /** Seconds since the epoch, or null. */
  currentPeriodEnd: number | null;
  cancelAtPeriodEnd: boolean;
  trialEnd: number | null;
}

export interface PurchaseState {
  checkoutSessionId: string;
  status: 'paid' | 'pending' | 'failed' | 'refunded';
  amountTotal: number | null;
  currency: string | null;
  plan: string | null;
  paymentIntentId: string | null;
}

export type InvoicePaymentStatus = 'ok' | 'past_due' | 'action_required';

export interface CustomerState {
  customerId: string;
  userId: string | null;
  email: string | null;
  deleted: boolean;
  subscriptions: Record<string, SubscriptionState>;
  payment: {
    invoiceStatus: InvoicePaymentStatus;
    lastInvoiceId: string | null;
    lastError: string | null;
    openDisputes: string[];
    /** Invoices that reached `paid` or `void`: a later failure of the same invoice may not undo them. */
    settledInvoices: string[];
  };
  purchases: Record<string, PurchaseState>;
  /** Lookup keys from Stripe's `entitlements.active_entitlement_summary.updated`. */
  stripeEntitlements: Array<{ lookupKey: string; entitlementId: string }>;
  /** Highest log position folded in (the `version` of the pushed state). */
  version: number;
  /** Highest `created` folded in, seconds since the epoch. */
  lastCreated: number;
}

export interface Evolution {
  state: CustomerState;
  outcome: Outcome;
  reason?: string;
}

export function emptyCustomer(customerId: string): CustomerState {
  return {
    customerId,
    userId: null,
    email: null,
    deleted: false,
    subscriptions: {},
    payment: {
      invoiceStatus: 'ok',
      lastInvoiceId: null,
      lastError: null,
      openDisputes: [],
      settledInvoices: [],
    },
    purchases: {},
    stripeEntitlements: [],
    version: 0,
    lastCreated: 0,
  };
}

const TERMINAL_SUBSCRIPTION_STATUSES = new Set(['canceled', 'incomplete_expired']);

const str = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);
const num = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null;
const metadataOf = (object: StripeObject): Record<string, unknown> =>
  (object.metadata && typeof object.metadata === 'object' ? object.metadata : {}) as Record<string, unknown>;

function readItems(subscription: StripeObject): Array<SubscriptionItemState & { periodEnd: number | null }> {
  const list = (subscription.items as { data?: StripeObject[] } | undefined)?.data ?? [];
  return list.map((item) => {
    const price = (item.price ?? item.plan ?? {}) as StripeObject;
    return {
      priceId: str(price.id),
      productId: idOf(price.product) ?? null,
      lookupKey: str(price.lookup_key),
      quantity: num(item.quantity) ?? 1,
      periodEnd: num(item.current_period_end),
    };
  });
}

/** Reads a subscription snapshot. Since API version 2025-03-31 the period lives on the items. */
export function readSubscription(subscription: StripeObject): SubscriptionState {
  const items = readItems(subscription);
  const itemEnds = items.map((item) => item.periodEnd).filter((end): end is number => end !== null);
  return {
    id: subscription.id!,
    status: str(subscription.status) ?? 'incomplete',
    items: items.map(({ periodEnd: _periodEnd, ...item }) => item),
    currentPeriodEnd:
      num(subscription.current_period_end) ?? (itemEnds.length ? Math.max(...itemEnds) : null),
    cancelAtPeriodEnd: subscription.cancel_at_period_end === true,
    trialEnd: num(subscription.trial_end),
  };
}

type Handler = (state: CustomerState, object: StripeObject, event: LoggedEvent) => Evolution;

const applied = (state: CustomerState): Evolution => ({ state, outcome: 'applied' });
const stale = (state: CustomerState, reason: string): Evolution => ({ state, outcome: 'stale', reason });

function onCustomer(state: CustomerState, object: StripeObject, event: LoggedEvent): Evolution {
  if (event.type === 'customer.deleted') return applied({ ...state, deleted: true });
  if (state.deleted) return stale(state, 'customer already deleted');
  return applied({
    ...state,
    email: str(object.email) ?? state.email,
    userId: str(metadataOf(object).userId) ?? state.userId,
  });
}

function onSubscription(state: CustomerState, object: StripeObject): Evolution {
  if (!object.id) return { state, outcome: 'failed', reason: 'subscription without id' };
  const previous = state.subscriptions[object.id];
  const next = readSubscription(object);
  if (
    previous &&
    TERMINAL_SUBSCRIPTION_STATUSES.has(previous.status) &&
    !TERMINAL_SUBSCRIPTION_STATUSES.has(next.status)
  ) {
    return stale(state, `subscription already ${previous.status}`);
  }
  return applied({ ...state, subscriptions: { ...state.subscriptions, [next.id]: next } });
}

function onInvoice(status: InvoicePaymentStatus): Handler {
  return (state, object) => {
    const invoiceId = str(object.id);
    if (status !== 'ok' && invoiceId && state.payment.settledInvoices.includes(invoiceId)) {
      return stale(state, 'invoice already settled');
    }
    const settles = status === 'ok' && invoiceId && !state.payment.settledInvoices.includes(invoiceId);
    const error = (object.last_finalization_error as { message?: unknown } | null | undefined)?.message;
    return applied({
      ...state,
      payment: {
        ...state.payment,
        invoiceStatus: status,
        lastInvoiceId: invoiceId ?? state.payment.lastInvoiceId,
        lastError:
          status === 'ok'
            ? null
            : (str(error) ?? (status === 'past_due' ? 'payment_failed' : 'action_required')),
        settledInvoices: settles
          ? [...state.payment.settledInvoices, invoiceId]
          : state.payment.settledInvoices,
      },
    });
  };
}

function onDispute(open: boolean): Handler {
  return (state, object) => {
    const id = str(object.id);
    if (!id) return { state, outcome: 'failed', reason: 'dispute without id' };
    const others = state.payment.openDisputes.filter((dispute) => dispute !== id);
    return applied({
      ...state,
      payment: { ...state.payment, openDisputes: open ? [...others, id].sort() : others },
    });
  };
}

function onCheckoutCompleted(state: CustomerState, object: StripeObject): Evolution {
  const metadata = metadataOf(object);
  const userId = str(metadata.userId) ?? str(object.client_reference_id) ?? state.userId;
  const next = { ...state, userId };
  // A subscription-mode checkout grants nothing itself: its subscription's items do (SPEC section 5).
  if (object.mode !== 'payment' || !object.id) return applied(next);
  const existing = state.purchases[object.id];
  const status: PurchaseState['status'] =
    existing?.status === 'refunded' ? 'refunded' : object.payment_status === 'paid' ? 'paid' : 'pending';
  return applied({
    ...next,
    purchases: {
      ...state.purchases,
      [object.id]: {
        checkoutSessionId: object.id,
        status,
        amountTotal: num(object.amount_total),
        currency: str(object.currency),
        plan: str(metadata.plan),
        paymentIntentId: idOf(object.payment_intent) ?? null,
      },
    },
  });
}

function onAsyncPayment(status: 'paid' | 'failed'): Handler {
  return (state, object, event) => {
    const id = str(object.id);
    const existing = id ? state.purchases[id] : undefined;
    if (!existing)
      return onCheckoutCompleted(state, { ...object, payment_status: status === 'paid' ? 'paid' : 'unpaid' });
    if (existing.status === 'refunded') return stale(state, `purchase already refunded (${event.type})`);
    return applied({
      ...state,
      purchases: { ...state.purchases, [existing.checkoutSessionId]: { ...existing, status } },
    });
  };
}

function onRefund(state: CustomerState, object: StripeObject): Evolution {
  // Only a full refund revokes the purchase (SPEC section 5); a partial one leaves it in place.
  if (object.refunded !== true) return applied(state);
  const paymentIntentId = idOf(object.payment_intent);
  const purchase = Object.values(state.purchases).find(
    (p) => paymentIntentId && p.paymentIntentId === paymentIntentId,
  );
  if (!purchase) return applied(state);
  return applied({
    ...state,
    purchases: { ...state.purchases, [purchase.checkoutSessionId]: { ...purchase, status: 'refunded' } },
  });
}

function onEntitlementSummary(state: CustomerState, object: StripeObject): Evolution {
  const list = (object.entitlements as { data?: StripeObject[] } | undefined)?.data ?? [];
  const stripeEntitlements = list
    .map((entitlement) => ({
      lookupKey: str(entitlement.lookup_key) ?? '',
      entitlementId: str(entitlement.id) ?? '',
    }))
    .filter((entitlement) => entitlement.lookupKey !== '')
    .sort((a, b) => a.lookupKey.localeCompare(b.lookupKey));
  return applied({ ...state, stripeEntitlements });
}

const notableOnly: Handler = (state) => applied(state);

const HANDLERS = {
  'customer.created': onCustomer,
  'customer.updated': onCustomer,
  'customer.deleted': onCustomer,
  'customer.subscription.created': onSubscription,
  'customer.subscription.updated': onSubscription,
  'customer.subscription.deleted': onSubscription,
  'customer.subscription.paused': onSubscription,
  'customer.subscription.resumed': onSubscription,
  'customer.subscription.pending_update_applied': onSubscription,
  'customer.subscription.trial_will_end': notableOnly,
  'invoice.paid': onInvoice('ok'),
  'invoice.payment_succeeded': onInvoice('ok'),
  'invoice.payment_failed': onInvoice('past_due'),
  'invoice.payment_action_required': onInvoice('action_required'),
  'charge.dispute.created': onDispute(true),
  'charge.dispute.closed': onDispute(false),
  'checkout.session.completed': onCheckoutCompleted,
  'checkout.session.async_payment_succeeded': onAsyncPayment('paid'),
  'checkout.session.async_payment_failed': onAsyncPayment('failed'),
  'charge.refunded': onRefund,
  'entitlements.active_entitlement_summary.updated': onEntitlementSummary,
} satisfies Record<CustomerEventType, Handler>;

export const UNLINKED_REASON = 'no customer on the event or its linked objects';

/** The outcome of a non-product event that reaches no customer, directly or through a link. */
export function unroutedOutcome(type: string): { outcome: Outcome; reason: string | null } {
  return isCustomerEventType(type)
    ? { outcome: 'unlinked', reason: UNLINKED_REASON }
    : { outcome: 'ignored', reason: null };
}

/**
 * Applies one event. An event the core cannot read (a malformed payload that makes a handler throw) is
 * `failed` and leaves the state exactly as it was, so it stops nothing, and the live projector, the
 * replay and `asOf` agree on it; a replay after a fix retries it.
 */
export function evolveCustomer(state: CustomerState, event: LoggedEvent): Evolution {
  const tracked = {
    ...state,
    version: Math.max(state.version, event.position),
    lastCreated: Math.max(state.lastCreated, event.created),
  };
  if (!isCustomerEventType(event.type)) return { state: tracked, outcome: 'ignored' };
  const handler: Handler = HANDLERS[event.type];
  try {
    return handler(tracked, dataObject(event), event);
  } catch (error) {
    return { state, outcome: 'failed', reason: describeFailure(error) };
  }
}

function describeFailure(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 500) : 'unknown error';
}

/**
 * The latest second a customer's fold reached: the state before that second's events, and those events. A
 * later event of the same second may be ranked before them (SPEC section 3), so it is folded by resuming
 * here (`foldIntoOpenSecond`) rather than onto the state after them.
 */
export interface OpenSecond {
  created: number;
  before: CustomerState;
  events: readonly LoggedEvent[];
}

export interface CustomerFold {
  state: CustomerState;
  outcomes: Map<string, { outcome: Outcome; reason: string | null }>;
  /** Null when no event was folded. */
  open: OpenSecond | null;
}

/** Folds a customer's events in fold order (SPEC section 3). */
export function foldCustomer(customerId: string, events: readonly LoggedEvent[]): CustomerFold {
  return foldOnto(emptyCustomer(customerId), events);
}

/**
 * Folds `events`, none older than `open`'s second, into the fold that `open` came from: the same fold as
 * the customer's whole history, because the fold order never moves an event across a second, so what
 * precedes the second is `open.before` whatever joins it.
 */
export function foldIntoOpenSecond(open: OpenSecond, events: readonly LoggedEvent[]): CustomerFold {
  if (events.some((event) => event.created < open.created))
    throw new Error('an event older than the open second needs the whole history');
  return foldOnto(open.before, [...open.events, ...events]);
}

function foldOnto(start: CustomerState, events: readonly LoggedEvent[]): CustomerFold {
  let state = start;
  let open = null as { created: number; before: CustomerState; events: LoggedEvent[] } | null;
  const outcomes: CustomerFold['outcomes'] = new Map();
  for (const { event } of sortForFold(events)) {
    if (!open || open.created !== event.created) open = { created: event.created, before: state, events: [] };
    open.events.push(event);
    const evolution = evolveCustomer(state, event);
    state = evolution.state;
    outcomes.set(event.id, { outcome: evolution.outcome, reason: evolution.reason ?? null });
  }
  return { state, outcomes, open };
}
