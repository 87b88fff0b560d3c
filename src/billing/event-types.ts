/**
 * The one list of Stripe event types the billing core handles (SPEC section 5), and the outcomes a log row
 * can have (section 3). Every table keyed by event type (the customer handlers, the notable-event
 * summaries, the product fold) is typed `Record<…EventType, …>` from these lists, so adding a type here
 * fails to compile until each table says what it does with it; SQL receives the same lists as parameters.
 */

/** `customer.subscription.*` events that carry the whole subscription. */
export const SUBSCRIPTION_SNAPSHOT_TYPES = [
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'customer.subscription.pending_update_applied',
] as const;

/** Types whose effect is on one customer's state. */
export const CUSTOMER_EVENT_TYPES = [
  'customer.created',
  'customer.updated',
  'customer.deleted',
  ...SUBSCRIPTION_SNAPSHOT_TYPES,
  'customer.subscription.trial_will_end',
  'invoice.paid',
  'invoice.payment_succeeded',
  'invoice.payment_failed',
  'invoice.payment_action_required',
  'charge.dispute.created',
  'charge.dispute.closed',
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'charge.refunded',
  'entitlements.active_entitlement_summary.updated',
] as const;

/** Types that belong to no customer: product features, folded globally. */
export const PRODUCT_EVENT_TYPES = ['product.created', 'product.updated', 'product.deleted'] as const;

export type CustomerEventType = (typeof CUSTOMER_EVENT_TYPES)[number];
export type ProductEventType = (typeof PRODUCT_EVENT_TYPES)[number];
export type HandledEventType = CustomerEventType | ProductEventType;

const customerTypes: ReadonlySet<string> = new Set(CUSTOMER_EVENT_TYPES);
const productTypes: ReadonlySet<string> = new Set(PRODUCT_EVENT_TYPES);

export const isCustomerEventType = (type: string): type is CustomerEventType => customerTypes.has(type);
export const isProductEventType = (type: string): type is ProductEventType => productTypes.has(type);

/** How an event reached the log (SPEC section 3). */
export const EVENT_SOURCES = ['webhook', 'api', 'reconcile'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** A log row's projection outcome: `pending` until the projector has seen it. */
export const OUTCOMES = ['pending', 'applied', 'stale', 'ignored', 'unlinked', 'failed'] as const;
export type LogOutcome = (typeof OUTCOMES)[number];
