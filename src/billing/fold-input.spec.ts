/**
 * The fold input as a specification: folding it gives exactly what folding the whole payload gives (state,
 * outcomes and their reasons, routing, notable events), for random objects of every handled type, with
 * the fields the core reads in every shape (expanded, missing, null, malformed), beside fields it ignores.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { foldCustomer } from './customer.js';
import { CUSTOMER_EVENT_TYPES, PRODUCT_EVENT_TYPES } from './event-types.js';
import type { EventPayload, LoggedEvent } from './events.js';
import { foldInput } from './fold-input.js';
import { notableEvent } from './notable.js';
import { evolveProducts } from './products.js';
import { routeEvent } from './routing.js';

const scalar = fc.oneof(
  fc.constantFrom('active', 'canceled', 'paid', 'payment', 'subscription', 'cus_1', 'pi_1', 'ch_1', ''),
  fc.integer({ min: -1, max: 2_000_000_000 }),
  fc.boolean(),
  fc.constant(null),
);
const expandable = fc.oneof(scalar, fc.record({ id: scalar, object: scalar, email: scalar }));
const metadata = fc.oneof(
  fc.dictionary(fc.constantFrom('userId', 'plan', 'features', 'other'), scalar),
  scalar,
);
const price = fc.oneof(
  fc.record(
    { id: scalar, product: expandable, lookup_key: scalar, unit_amount: scalar, recurring: fc.object() },
    { requiredKeys: [] },
  ),
  scalar,
);
const list = <T>(entry: fc.Arbitrary<T>) =>
  fc.oneof(
    fc.record({ object: fc.constant('list'), data: fc.array(entry, { maxLength: 3 }), url: scalar }),
    fc.record({ data: scalar }),
    scalar,
  );
const item = fc.oneof(
  fc.record(
    { id: scalar, price, plan: price, quantity: scalar, current_period_end: scalar, metadata },
    { requiredKeys: [] },
  ),
  scalar,
);
const object = fc.record(
  {
    id: fc.oneof(fc.constantFrom('sub_1', 'in_1', 'ch_1', 'cs_1', 'dp_1', 'prod_1', 'cus_1'), scalar),
    object: fc.constantFrom('subscription', 'invoice', 'charge', 'checkout.session', 'customer', 'product'),
    status: scalar,
    email: scalar,
    metadata,
    mode: fc.constantFrom('payment', 'subscription', 5),
    payment_status: fc.constantFrom('paid', 'unpaid', null),
    amount_total: scalar,
    currency: scalar,
    client_reference_id: scalar,
    refunded: scalar,
    current_period_end: scalar,
    cancel_at_period_end: scalar,
    trial_end: scalar,
    customer: expandable,
    payment_intent: expandable,
    charge: expandable,
    invoice: expandable,
    last_finalization_error: fc.oneof(fc.record({ message: scalar, code: scalar }), scalar),
    items: list(item),
    entitlements: list(fc.oneof(fc.record({ id: scalar, lookup_key: scalar, feature: scalar }), scalar)),
    description: scalar,
    automatic_tax: fc.object(),
  },
  { requiredKeys: ['object'] },
);
const types = fc.constantFrom(...CUSTOMER_EVENT_TYPES, ...PRODUCT_EVENT_TYPES, 'invoice.finalized');

/** Events of one customer, each in its own second (events sharing a second and an object are read whole). */
const lifecycle = fc.array(fc.record({ type: types, object }), { minLength: 1, maxLength: 12 }).map((drawn) =>
  drawn.map(({ type, object: data }, i): LoggedEvent => ({
    id: `evt_${i}`,
    type,
    created: 1_790_000_000 + i * 7,
    position: 100 - i,
    payload: { data: { object: data, previous_attributes: { status: 'x' } } },
  })),
);

const cut = (event: LoggedEvent): LoggedEvent => ({ ...event, payload: foldInput(event.payload) });

describe('foldInput', () => {
  it('folds to the same state and outcomes as the whole payload', () => {
    fc.assert(
      fc.property(lifecycle, (events) => {
        const { state, outcomes } = foldCustomer('cus_1', events);
        expect(foldCustomer('cus_1', events.map(cut))).toMatchObject({ state, outcomes });
      }),
      { numRuns: 2000 },
    );
  });

  it('routes, names notable events and folds products as the whole payload does', () => {
    fc.assert(
      fc.property(lifecycle, (events) => {
        for (const event of events) {
          const small = cut(event);
          expect(routeEvent(small.payload)).toEqual(routeEvent(event.payload));
          expect(notableEvent(small)).toEqual(notableEvent(event));
          expect(evolveProducts({}, small)).toEqual(evolveProducts({}, event));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('changes nothing when cut again, and drops what the core never reads', () => {
    const payload: EventPayload = {
      data: {
        object: {
          id: 'sub_1',
          object: 'subscription',
          status: 'active',
          customer: { id: 'cus_1', object: 'customer', email: 'a@example.com', invoice_settings: {} },
          automatic_tax: { enabled: false },
          items: {
            object: 'list',
            data: [
              { id: 'si_1', quantity: 2, price: { id: 'price_1', product: 'prod_1', unit_amount: 4000 } },
            ],
          },
        },
        previous_attributes: { status: 'trialing' },
      },
    };
    expect(foldInput(payload)).toEqual({
      data: {
        object: {
          id: 'sub_1',
          object: 'subscription',
          status: 'active',
          customer: { id: 'cus_1' },
          items: { data: [{ quantity: 2, price: { id: 'price_1', product: 'prod_1' } }] },
        },
      },
    });
    expect(foldInput(foldInput(payload))).toEqual(foldInput(payload));
  });
});
