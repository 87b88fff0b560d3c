/**
 * Product features from `product.*` events: a product's `metadata.features` (comma-separated) applies from
 * that event on to every subscription that holds the product (SPEC section 5). Products belong to no
 * customer, so they are folded on their own and joined with a customer's state when it is viewed.
 */
import { dataObject, type LoggedEvent } from './events.js';
import { sortForFold } from './fold-order.js';

export type ProductFeatures = Record<string, string[]>;

export function parseFeatureList(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return [
    ...new Set(
      value
        .split(',')
        .map((feature) => feature.trim())
        .filter(Boolean),
    ),
  ].sort();
}

/** Applies one product event; the caller feeds events in fold order. */
export function evolveProducts(products: ProductFeatures, event: LoggedEvent): ProductFeatures {
  const product = dataObject(event);
  if (!product.id) return products;
  const { [product.id]: _previous, ...others } = products;
  if (event.type === 'product.deleted') return others;
  const features = parseFeatureList((product.metadata as Record<string, unknown> | undefined)?.features);
  return features.length ? { ...others, [product.id]: features } : others;
}

/** Folds product events in fold order (SPEC section 3), as the customer fold does its events. */
export function foldProducts(events: readonly LoggedEvent[]): ProductFeatures {
  return sortForFold(events).reduce<ProductFeatures>(
    (products, { event }) => evolveProducts(products, event),
    {},
  );
}
