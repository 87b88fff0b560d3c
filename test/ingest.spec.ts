/**
 * `POST /webhooks/stripe` over real HTTP against a real database (SPEC section 2): every signature case of
 * the Stripe scheme, bad payloads, the size limit, duplicates (also concurrent), and a log that cannot
 * commit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Stripe from 'stripe';
import { ADMIN_KEY, OLD_WEBHOOK_SECRET, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { postWebhook, sendEvent, sign, stripeEvent, uid } from './support/stripe.js';

let db: TestDatabase;
let app: RunningApp;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const rowsFor = (id: string) =>
  app.sql.query<Record<string, unknown>>(`SELECT * FROM stripe_events WHERE id = $1`, [id]);

function subscriptionUpdated(customer = uid('cus')) {
  return stripeEvent<Stripe.CustomerSubscriptionUpdatedEvent>('customer.subscription.updated', {
    id: uid('sub'),
    object: 'subscription',
    customer,
    status: 'active',
  });
}

describe('a verified event', () => {
  it('is stored once, with its derived columns, and answered 200', async () => {
    const event = subscriptionUpdated('cus_derived');
    const response = await sendEvent(app.url, event, WEBHOOK_SECRET);
    expect(response).toEqual({ status: 200, body: { received: true, duplicate: false } });
    const [row] = await rowsFor(event.id);
    expect(row).toMatchObject({
      type: 'customer.subscription.updated',
      customer_id: 'cus_derived',
      object_id: event.data.object.id,
      api_version: '2026-07-29.dahlia',
      livemode: false,
    });
    expect(new Date(row.created as string).getTime()).toBe(event.created * 1000);
    expect((row.payload as { id: string }).id).toBe(event.id);
  });

  it('is answered duplicate:true the second time and never makes a second row', async () => {
    const event = subscriptionUpdated();
    expect((await sendEvent(app.url, event, WEBHOOK_SECRET)).body.duplicate).toBe(false);
    expect(await sendEvent(app.url, event, WEBHOOK_SECRET)).toEqual({
      status: 200,
      body: { received: true, duplicate: true },
    });
    expect(await rowsFor(event.id)).toHaveLength(1);
  });

  it('gives one row for 50 concurrent deliveries of one event', async () => {
    const event = subscriptionUpdated();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => sendEvent(app.url, event, WEBHOOK_SECRET)),
    );
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(answers.filter((answer) => answer.body.duplicate === false)).toHaveLength(1);
    expect(await rowsFor(event.id)).toHaveLength(1);
  });

  it('is stored even when its type is unknown to Paywire', async () => {
    const event = stripeEvent<Stripe.Event>('some.future_event' as Stripe.Event['type'], {
      id: uid('obj'),
      object: 'future' as 'customer',
    });
    expect((await sendEvent(app.url, event, WEBHOOK_SECRET)).status).toBe(200);
    expect(await rowsFor(event.id)).toHaveLength(1);
  });

  it('verifies against a rotated (older) secret too', async () => {
    const event = subscriptionUpdated();
    expect((await sendEvent(app.url, event, OLD_WEBHOOK_SECRET)).status).toBe(200);
  });

  it('verifies when any one of several v1 signatures matches', async () => {
    const body = JSON.stringify(subscriptionUpdated());
    const good = sign(body, WEBHOOK_SECRET);
    const [t, v1] = good.split(',');
    const header = `${t},v1=${'0'.repeat(64)},${v1},v1=potato`;
    expect((await postWebhook(app.url, body, { 'stripe-signature': header })).status).toBe(200);
  });
});

describe('a bad signature is 400 invalid_signature and stores nothing', () => {
  const event = subscriptionUpdated();
  const body = JSON.stringify(event);
  const now = Math.floor(Date.now() / 1000);
  // Every row has three cells: jest hands a shorter row's missing cell to the test as a `done` callback.
  const cases: Array<[string, () => Record<string, string>, string | undefined]> = [
    ['a missing header', () => ({}), undefined],
    ['a malformed header', () => ({ 'stripe-signature': 'bad_header' }), undefined],
    [
      'a v0-only header',
      () => ({ 'stripe-signature': sign(body, WEBHOOK_SECRET).replace('v1=', 'v0=') }),
      undefined,
    ],
    ['the wrong secret', () => ({ 'stripe-signature': sign(body, 'whsec_someone_else') }), undefined],
    [
      'a tampered body',
      () => ({ 'stripe-signature': sign(body, WEBHOOK_SECRET) }),
      body.replace('"active"', '"canceled"'),
    ],
    [
      'a timestamp older than the tolerance',
      () => ({ 'stripe-signature': sign(body, WEBHOOK_SECRET, now - 301) }),
      undefined,
    ],
    [
      'a re-serialised body',
      () => ({ 'stripe-signature': sign(JSON.stringify(event, null, 2), WEBHOOK_SECRET) }),
      undefined,
    ],
    [
      'spaces after the commas',
      () => ({ 'stripe-signature': sign(body, WEBHOOK_SECRET).replace(',', ', ') }),
      undefined,
    ],
  ];
  it.each(cases)('%s', async (_name, headers, sentBody) => {
    const response = await postWebhook(app.url, sentBody ?? body, headers());
    expect(response).toEqual({ status: 400, body: { error: 'invalid_signature' } });
    expect(await rowsFor(event.id)).toHaveLength(0);
  });

  it('accepts a signature exactly as old as the tolerance allows', async () => {
    const fresh = JSON.stringify(subscriptionUpdated());
    const response = await postWebhook(app.url, fresh, {
      'stripe-signature': sign(fresh, WEBHOOK_SECRET, now - 290),
    });
    expect(response.status).toBe(200);
  });
});

describe('a verified body that is not a Stripe event is 400 invalid_payload', () => {
  const cases: Array<[string, string]> = [
    ['not JSON', '{"id": "evt_1", '],
    ['a JSON array', '[1,2,3]'],
    ['an object that is not an event', JSON.stringify({ id: 'cus_1', object: 'customer' })],
    [
      'an event without data.object',
      JSON.stringify({ id: 'evt_nodata', object: 'event', type: 'x.y', created: 1, data: {} }),
    ],
    [
      'an event with a bad id',
      JSON.stringify({ id: 'not-an-id', object: 'event', type: 'x.y', created: 1, data: { object: {} } }),
    ],
    [
      'a thin event',
      JSON.stringify({ id: 'evt_thin', object: 'v2.core.event', type: 'v1.billing.meter.no_meter_found' }),
    ],
  ];
  it.each(cases)('%s', async (_name, body) => {
    const response = await postWebhook(app.url, body, { 'stripe-signature': sign(body, WEBHOOK_SECRET) });
    expect(response).toEqual({ status: 400, body: { error: 'invalid_payload' } });
  });
});

it('answers 413 payload_too_large for a body over the limit', async () => {
  const event = stripeEvent<Stripe.CustomerUpdatedEvent>('customer.updated', {
    id: uid('cus'),
    object: 'customer',
    description: 'x'.repeat(1024 * 1024),
  });
  const body = JSON.stringify(event);
  const response = await postWebhook(app.url, body, { 'stripe-signature': sign(body, WEBHOOK_SECRET) });
  expect(response).toEqual({ status: 413, body: { error: 'payload_too_large' } });
  expect(await rowsFor(event.id)).toHaveLength(0);
});

it('answers 503 without internals when the log cannot commit, and accepts the same event once it can', async () => {
  const event = subscriptionUpdated();
  await app.sql.query(`ALTER TABLE stripe_events RENAME TO stripe_events_away`);
  let response;
  try {
    response = await sendEvent(app.url, event, WEBHOOK_SECRET);
  } finally {
    await app.sql.query(`ALTER TABLE stripe_events_away RENAME TO stripe_events`);
  }
  expect(response).toEqual({ status: 503, body: { error: 'unavailable' } });
  expect(await rowsFor(event.id)).toHaveLength(0);
  expect(await sendEvent(app.url, event, WEBHOOK_SECRET)).toEqual({
    status: 200,
    body: { received: true, duplicate: false },
  });
});

describe('health', () => {
  it('is live and ready while the database answers', async () => {
    expect(await (await fetch(`${app.url}/health/live`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${app.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ok', database: 'up' });
  });

  it('keeps admin routes behind the key', async () => {
    expect((await fetch(`${app.url}/admin/events/evt_x`)).status).toBe(401);
    const wrong = await fetch(`${app.url}/admin/events/evt_x`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${app.url}/admin/events/evt_x`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(right.status).toBe(404);
  });
});
