/**
 * The fold input: the part of a Stripe event's payload that the billing core reads, cut out at ingest and
 * stored beside the full payload, so a replay parses a few hundred bytes per event instead of ~4 KB (the
 * raw read of full payloads was most of a replay's time). Folding the fold input gives the same state and
 * outcomes as folding the payload, with one exception the readers handle: ordering two events of the same
 * object within one second compares one's `previous_attributes` with the other's whole object, so such
 * events are always read with their full payloads. Bump FOLD_INPUT_VERSION whenever the core starts
 * reading another field; rows cut by an older version are read whole (and refreshed by the next replay).
 */
import type { EventPayload, StripeObject } from './events.js';

export const FOLD_INPUT_VERSION = 1;

/** Top-level fields of `data.object` that the core reads (customer.ts, products.ts, routing.ts, notable.ts). */
const KEPT_FIELDS = [
  'id',
  'object',
  'status',
  'email',
  'metadata',
  'mode',
  'payment_status',
  'amount_total',
  'currency',
  'client_reference_id',
  'refunded',
  'current_period_end',
  'cancel_at_period_end',
  'trial_end',
] as const;

/** Expandable references: the core only ever reads their id. */
const REFERENCE_FIELDS = ['customer', 'payment_intent', 'charge', 'invoice'] as const;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of keys) if (key in source) picked[key] = source[key];
  return picked;
}

/** Keeps only `keys` of each entry of a `{ data: [...] }` list; any other shape is kept as it came. */
function pickList(value: unknown, cut: (entry: Record<string, unknown>) => Record<string, unknown>): unknown {
  if (!isRecord(value) || !Array.isArray(value.data)) return value;
  return { data: value.data.map((entry: unknown) => (isRecord(entry) ? cut(entry) : entry)) };
}

/** An expanded object becomes `{ id }`: `idOf` reads the same id from both, whatever the id holds. */
function cutReference(value: unknown): unknown {
  return isRecord(value) ? pick(value, ['id']) : value;
}

function cutPrice(price: unknown): unknown {
  if (!isRecord(price)) return price;
  const cut = pick(price, ['id', 'lookup_key']);
  if ('product' in price) cut.product = cutReference(price.product);
  return cut;
}

function cutItem(item: Record<string, unknown>): Record<string, unknown> {
  const cut = pick(item, ['quantity', 'current_period_end']);
  if ('price' in item) cut.price = cutPrice(item.price);
  if ('plan' in item) cut.plan = cutPrice(item.plan);
  return cut;
}

function cutObject(object: StripeObject): StripeObject {
  const cut: StripeObject = pick(object, KEPT_FIELDS);
  for (const field of REFERENCE_FIELDS) {
    if (field in object) cut[field] = cutReference(object[field]);
  }
  if ('last_finalization_error' in object) {
    const error = object.last_finalization_error;
    cut.last_finalization_error = isRecord(error) ? pick(error, ['message']) : error;
  }
  if ('items' in object) cut.items = pickList(object.items, cutItem);
  if ('entitlements' in object)
    cut.entitlements = pickList(object.entitlements, (entry) => pick(entry, ['id', 'lookup_key']));
  return cut;
}

/** True for a fold input, false for a whole payload (which always carries the event's id). */
export function isFoldInput(payload: EventPayload): boolean {
  return !('id' in payload);
}

/** The fold input of a payload. Pure; cutting a fold input again changes nothing. */
export function foldInput(payload: EventPayload): EventPayload {
  const object = payload.data?.object;
  return { data: { object: isRecord(object) ? cutObject(object) : object } };
}
