/**
 * Which customer an event belongs to. Most Stripe objects name their customer; a dispute does not (it
 * names a charge and a payment intent), and a guest charge may not either. Events that do name a
 * customer therefore also *link* the charges, payment intents and invoices they mention to it, and an
 * event without a customer is routed through those links. `object_id` is the object the event is about.
 */
import { dataObject, idOf, type LoggedEvent, type StripeObject } from './events.js';

export interface Routing {
  /** The customer named by the event itself. */
  customerId: string | null;
  /** The object the event is about (`data.object.id`). */
  objectId: string | null;
  /** Ids that, when linked to a customer by another event, route this one to that customer. */
  references: string[];
  /** Ids this event ties to its customer. */
  links: string[];
}

export function routeEvent(payload: { data?: { object?: unknown } }): Routing {
  const object = (payload.data?.object ?? {}) as StripeObject;
  const objectId = typeof object.id === 'string' ? object.id : null;
  const customerId = object.object === 'customer' ? objectId : (idOf(object.customer) ?? null);
  const mentioned = [
    idOf(object.payment_intent),
    idOf(object.charge),
    idOf(object.invoice),
    object.object === 'charge' || object.object === 'payment_intent' || object.object === 'invoice'
      ? objectId
      : undefined,
  ].filter((id): id is string => id !== undefined);
  const unique = [...new Set(mentioned)];
  return {
    customerId,
    objectId,
    references: customerId ? [] : unique,
    links: customerId ? unique : [],
  };
}

export function routeLoggedEvent(event: LoggedEvent): Routing {
  return routeEvent({ data: { object: dataObject(event) } });
}
