/**
 * Notable events: the ones a customer-facing page wants to hear about as they happen (SPEC section 6,
 * `…/events` topics), each with a one-line summary. Everything else changes state silently.
 */
import { dataObject, type LoggedEvent } from './events.js';

const SUMMARIES: Record<string, (status: unknown) => string> = {
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
  const summarise = SUMMARIES[event.type];
  if (!summarise) return null;
  return {
    id: event.id,
    type: event.type,
    created: new Date(event.created * 1000).toISOString().replace('.000Z', 'Z'),
    summary: summarise(dataObject(event).status),
  };
}
