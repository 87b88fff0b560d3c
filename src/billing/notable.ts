/**
 * Notable events: the ones a customer-facing page wants to hear about as they happen (SPEC section 6,
 * `…/events` topics), each with a one-line summary. Everything else changes state silently.
 */
import { isCustomerEventType, type CustomerEventType } from './event-types.js';
import { dataObject, type LoggedEvent } from './events.js';

/** Every customer event type says whether it is notable (a summary) or changes state silently (null). */
const SUMMARIES: Record<CustomerEventType, ((status: unknown) => string) | null> = {
  'customer.created': null,
  'customer.updated': null,
  'customer.deleted': null,
  'customer.subscription.paused': null,
  'customer.subscription.resumed': null,
  'customer.subscription.pending_update_applied': null,
  'checkout.session.async_payment_failed': null,
  'charge.refunded': null,
  'entitlements.active_entitlement_summary.updated': null,
  'checkout.session.completed': () => 'Checkout completed',
  'checkout.session.async_payment_succeeded': () => 'Payment succeeded',
  'invoice.paid': () => 'Payment succeeded',
  'invoice.payment_succeeded': () => 'Payment succeeded',
  'invoice.payment_failed': () => 'Payment failed',
  'invoice.payment_action_required': () => 'Payment needs your action',
  'customer.subscription.created': (status) => `Subscription started (${String(status)})`,
  'customer.subscription.updated': (status) => `Subscription changed (${String(status)})`,
  'customer.subscription.deleted': () => 'Subscription canceled',
  'customer.subscription.trial_will_end': () => 'Trial ending soon',
  'charge.dispute.created': () => 'Dispute opened',
  'charge.dispute.closed': () => 'Dispute closed',
};

export interface NotableEvent {
  id: string;
  type: string;
  created: string;
  summary: string;
}

export function notableEvent(event: LoggedEvent): NotableEvent | null {
  const summarise = isCustomerEventType(event.type) ? SUMMARIES[event.type] : null;
  if (!summarise) return null;
  return {
    id: event.id,
    type: event.type,
    created: new Date(event.created * 1000).toISOString().replace('.000Z', 'Z'),
    summary: summarise(dataObject(event).status),
  };
}
