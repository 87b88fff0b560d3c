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

export interface LoggedRouting {
  id: string;
  customerId: string | null;
  /** The event's mentioned objects (the log's `refs`): links, or references when customerId is null. */
  refs: readonly string[];
}

/**
 * Routes a whole log at once, with the rules the live projector applies event by event: the first event
 * (by position) that links an object wins it; an event without a customer goes to the customer of its
 * smallest linked reference, or waits until one of its references is linked. Pure, so a replay can plan
 * every route from two small columns before it folds a single customer.
 */
export function routeLog(rows: Iterable<LoggedRouting>): {
  links: Map<string, string>;
  routes: Map<string, string>;
} {
  const links = new Map<string, string>();
  const routes = new Map<string, string>();
  const waiting = new Map<string, string[]>();
  for (const row of rows) {
    if (row.customerId) {
      for (const objectId of row.refs) {
        if (links.has(objectId)) continue;
        links.set(objectId, row.customerId);
        for (const eventId of waiting.get(objectId) ?? [])
          if (!routes.has(eventId)) routes.set(eventId, row.customerId);
        waiting.delete(objectId);
      }
      continue;
    }
    const linked = row.refs.filter((objectId) => links.has(objectId)).sort();
    if (linked.length > 0) {
      routes.set(row.id, links.get(linked[0])!);
      continue;
    }
    for (const objectId of row.refs) waiting.set(objectId, [...(waiting.get(objectId) ?? []), row.id]);
  }
  return { links, routes };
}
