/**
 * Listing Stripe's events oldest first in windows, against fake-stripe: every event comes out exactly once,
 * in `created` order, with cursors that only grow, and almost every request returns a full page, also
 * when the density jumps by orders of magnitude (a burst of 12,000 events in one second).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { FakeStripe } from '../fake-stripe/fake-stripe.js';
import { createStripeApi } from '../stripe-api/stripe-api.js';
import { PAGE_SIZE, eventWindows } from './event-windows.js';

let fake: FakeStripe;
let stripe: Stripe;

beforeAll(async () => {
  fake = await new FakeStripe({ clockOffset: -7200 }).start();
  stripe = createStripeApi({ secretKey: 'sk_test_windows', apiUrl: fake.url, ratePerSecond: 1000 });
});

afterAll(() => fake.close());

it('yields each event once, oldest first, with few requests beyond one per full page', async () => {
  const since = fake.now();
  // Sparse for an hour, then 12,000 in one second, then 3,000 over two seconds, then sparse again.
  for (let i = 0; i < 500; i++) {
    fake.clockOffset += 7;
    fake.createCustomer({ email: `sparse${i}@example.com` });
  }
  for (let i = 0; i < 12_000; i++) fake.createCustomer({ email: `burst${i}@example.com` });
  for (let i = 0; i < 3000; i++) {
    if (i === 1500) fake.clockOffset += 1;
    fake.createCustomer({ email: `busy${i}@example.com` });
  }
  for (let i = 0; i < 300; i++) {
    fake.clockOffset += 5;
    fake.createCustomer({ email: `late${i}@example.com` });
  }

  const seen: Stripe.Event[] = [];
  let requests = 0;
  let windows = 0;
  let cursor = since;
  for await (const window of eventWindows(stripe, since)) {
    expect(window.cursor).toBeGreaterThan(cursor);
    for (const event of window.events) {
      expect(event.created).toBeGreaterThanOrEqual(cursor);
      expect(event.created).toBeLessThan(window.cursor);
    }
    cursor = window.cursor;
    seen.push(...window.events);
    requests += window.requests;
    windows++;
  }
  const expected = fake.allEvents().filter((event) => event.created >= since);
  expect(seen.map((event) => event.id)).toEqual(expected.map((event) => event.id));
  expect(fake.requestTimes.length).toBe(requests);
  // One partial page per window at most, beyond the full pages the events need.
  expect(requests).toBeLessThanOrEqual(Math.ceil(expected.length / PAGE_SIZE) + windows);
  expect(requests / Math.ceil(expected.length / PAGE_SIZE)).toBeLessThan(1.1);
}, 60_000);
