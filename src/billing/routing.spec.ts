/** Routing as a specification: which customer an event reaches, through links made before or after it. */
import { describe, expect, it } from '@jest/globals';
import { routeEvent, routeLog } from './routing.js';

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

describe('routeLog', () => {
  it('routes an event through a link made before it', () => {
    const { routes } = routeLog([
      { id: 'evt_charge', customerId: 'cus_1', refs: ['ch_1'] },
      { id: 'evt_dispute', customerId: null, refs: ['ch_1'] },
    ]);
    expect(routes).toEqual(new Map([['evt_dispute', 'cus_1']]));
  });

  it('routes a waiting event once a link appears, and leaves the rest unrouted', () => {
    const { routes, links } = routeLog([
      { id: 'evt_dispute', customerId: null, refs: ['pi_9'] },
      { id: 'evt_orphan', customerId: null, refs: ['ch_404'] },
      { id: 'evt_payment', customerId: 'cus_9', refs: ['pi_9'] },
    ]);
    expect(routes).toEqual(new Map([['evt_dispute', 'cus_9']]));
    expect(links).toEqual(new Map([['pi_9', 'cus_9']]));
  });

  it('lets the first link of an object win and prefers the smallest linked reference', () => {
    const { routes, links } = routeLog([
      { id: 'e1', customerId: 'cus_a', refs: ['pi_2'] },
      { id: 'e2', customerId: 'cus_b', refs: ['pi_2', 'ch_1'] },
      { id: 'e3', customerId: null, refs: ['pi_2', 'ch_1'] },
    ]);
    expect(links.get('pi_2')).toBe('cus_a');
    expect(routes.get('e3')).toBe('cus_b');
  });
});
