/** Routing as a specification: the customer an event names, and the objects it links or references. */
import { describe, expect, it } from '@jest/globals';
import { routeEvent } from './routing.js';

describe('routeEvent', () => {
  it('links what an event with a customer mentions, and references what one without mentions', () => {
    expect(
      routeEvent({
        data: { object: { id: 'ch_1', object: 'charge', customer: 'cus_1', payment_intent: { id: 'pi_1' } } },
      }),
    ).toEqual({
      customerId: 'cus_1',
      objectId: 'ch_1',
      references: [],
      links: ['pi_1', 'ch_1'],
    });
    expect(
      routeEvent({
        data: { object: { id: 'dp_1', object: 'dispute', charge: 'ch_1', payment_intent: 'pi_1' } },
      }),
    ).toEqual({
      customerId: null,
      objectId: 'dp_1',
      references: ['pi_1', 'ch_1'],
      links: [],
    });
  });
});
