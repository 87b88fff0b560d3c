/**
 * Resuming a fold in its open second (`foldIntoOpenSecond`) as a specification: for any history and any
 * later events none older than the history's latest second, it gives the state and the later events'
 * outcomes that folding everything from scratch gives. The events crowd a few seconds and one
 * subscription, with `previous_attributes`, `*.created` and terminal snapshots, so the causal rank reorders
 * them within a second, and some are malformed, so that they fail.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { foldCustomer, foldIntoOpenSecond } from './customer.js';
import type { LoggedEvent } from './events.js';

const STATUSES = ['trialing', 'active', 'past_due', 'canceled', 'unpaid'] as const;

const drawn = fc.record({
  type: fc.constantFrom(
    'customer.subscription.created',
    'customer.subscription.updated',
    'customer.subscription.deleted',
    'customer.updated',
    'invoice.payment_failed',
  ),
  status: fc.constantFrom(...STATUSES),
  previous: fc.option(fc.constantFrom(...STATUSES), { nil: undefined }),
  second: fc.integer({ min: 0, max: 2 }),
  malformed: fc.boolean(),
});

type Drawn = typeof drawn extends fc.Arbitrary<infer T> ? T : never;

function toEvents(draws: Drawn[], first: number): LoggedEvent[] {
  return draws.map((d, i) => {
    const id = `evt_${first + i}`;
    const created = 1_800_000_000 + d.second;
    const object =
      d.type === 'customer.updated'
        ? { id: 'cus_1', object: 'customer', email: `${d.status}@example.com` }
        : d.type === 'invoice.payment_failed'
          ? { id: 'in_1', object: 'invoice', customer: 'cus_1', status: 'open', subscription: 'sub_1' }
          : {
              id: 'sub_1',
              object: 'subscription',
              customer: 'cus_1',
              status: d.status,
              items: d.malformed ? { data: 5 } : { data: [{ id: 'si_1', quantity: 1, price: { id: 'p' } }] },
            };
    return {
      id,
      type: d.type,
      created,
      position: first + i,
      payload: {
        id,
        object: 'event',
        type: d.type,
        created,
        data: { object, ...(d.previous ? { previous_attributes: { status: d.previous } } : {}) },
      } as never,
    };
  });
}

const draws = fc.array(drawn, { minLength: 1, maxLength: 8 });

describe('foldIntoOpenSecond', () => {
  it('folds later events of the open second (or after it) as the whole history does', () => {
    fc.assert(
      fc.property(draws, draws, (before, after) => {
        const history = toEvents(before, 1);
        const fold = foldCustomer('cus_1', history);
        const open = fold.open!;
        // Later events, none older than the open second: some share it, some come after.
        const later = toEvents(after, 100).map((event) => ({
          ...event,
          created: Math.max(event.created, open.created),
        }));
        const whole = foldCustomer('cus_1', [...history, ...later]);
        const resumed = foldIntoOpenSecond(open, later);
        expect(resumed.state).toEqual(whole.state);
        for (const event of later)
          expect(resumed.outcomes.get(event.id)).toEqual(whole.outcomes.get(event.id));
        expect(resumed.open).toEqual(whole.open);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses an event older than the open second', () => {
    const [first, second] = toEvents(
      [
        { type: 'customer.updated', status: 'active', previous: undefined, second: 2, malformed: false },
        { type: 'customer.updated', status: 'unpaid', previous: undefined, second: 1, malformed: false },
      ],
      1,
    );
    const open = foldCustomer('cus_1', [first]).open!;
    expect(() => foldIntoOpenSecond(open, [second])).toThrow(/older than the open second/);
  });
});
