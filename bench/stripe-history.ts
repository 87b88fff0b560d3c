/**
 * A fake-stripe holding N events of history (checkouts, renewals and cancellations spread over the past
 * twenty days), in a process of its own so that its memory and CPU are not counted as Paywire's. Prints
 * its URL on stdout when ready; `npm run bench:backfill` starts it.
 */
import { FakeStripe } from '../src/fake-stripe/fake-stripe.js';

const EVENTS = Number(process.env.BENCH_BACKFILL_EVENTS ?? 100_000);
const SPAN_SECONDS = 20 * 86400;

const fake = new FakeStripe({ clockOffset: -SPAN_SECONDS });
await fake.start();
// A checkout (5 events), two renewals (2 each) and, for one in four, a cancellation (2): about 9.5 events.
const lifecycles = Math.ceil(EVENTS / 9.5);
for (let i = 0; fake.allEvents().length < EVENTS; i++) {
  fake.clockOffset = -SPAN_SECONDS + Math.floor((i / lifecycles) * (SPAN_SECONDS - 60));
  const session = fake.createCheckoutSession({
    mode: 'subscription',
    line_items: [{ price: fake.products[0].priceId }],
    metadata: { userId: `user_${i}` },
    success_url: 'http://example.test/success',
  });
  const subscription = fake.completeCheckout(session.id).subscription as string;
  fake.renew(subscription);
  fake.renew(subscription);
  if (i % 4 === 0) fake.cancel(subscription);
}
process.stdout.write(`${fake.url} ${fake.allEvents().length}\n`);
