/**
 * Product features from `product.*` events: a product's `metadata.features` (comma-separated) applies from
 * that event on to every subscription that holds the product (SPEC section 5). Products belong to no
 * customer, so they are folded on their own and joined with a customer's state when it is viewed.
 */
import { dataObject, type LoggedEvent } from './events.js';

export type ProductFeatures = Record<string, string[]>;

export const PRODUCT_EVENT_TYPES: readonly string[] = [
  'product.created',
  'product.updated',
  'product.deleted',
];

export function isProductEventType(type: string): boolean {
  return PRODUCT_EVENT_TYPES.includes(type);
}

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
