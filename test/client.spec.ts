/**
 * The browser client (`paywire/client`) over real WebSockets: against Paywire itself (a webhook's state
 * arrives; short-lived tokens are refreshed before they expire) and against a bare broker the test
 * controls (states out of version order are ignored; after every connection is dropped it reconnects with
 * a fresh token). Shared connections: an immediate unsubscribe–subscribe, as StrictMode does, keeps one.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import type Stripe from 'stripe';
import { useBillingState } from '../src/client/react.js';
import {
  sharedConnection,
  subscribeBillingState,
  type BillingSnapshot,
  type BillingToken,
} from '../src/client/index.js';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { until } from './support/until.js';
import { startLocalBroker, type LocalBroker } from './support/local-broker.js';
import { sendEvent, stripeEvent, uid } from './support/stripe.js';

let db: TestDatabase;
let app: RunningApp;
let local: LocalBroker;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db);
  local = await startLocalBroker();
});

afterAll(async () => {
  await local?.close();
  await app?.close();
  await db?.drop();
});

function paywireTokens(customerId: string, ttlSeconds = 900) {
  let calls = 0;
  const getToken = async (): Promise<BillingToken> => {
    calls++;
    const response = await fetch(`${app.url}/admin/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ customerId, ttlSeconds }),
    });
    return (await response.json()) as BillingToken;
  };
  return { getToken, calls: () => calls };
}

function localTokens(subject: string) {
  let calls = 0;
  const getToken = async (): Promise<BillingToken> => {
    calls++;
    return {
      token: `t${calls}`,
      url: local.url,
      clientId: `${subject}:${calls}`,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    };
  };
  return { getToken, calls: () => calls };
}

const state = (customerId: string, version: number, email: string) => ({
  customerId,
  userId: null,
  email,
  deleted: false,
  entitlements: [],
  subscriptions: [],
  payment: { status: 'ok', lastInvoiceId: null, lastError: null },
  purchases: [],
  version,
  asOf: null,
});

describe('against Paywire', () => {
  it("receives a webhook's effect, and keeps receiving across refreshes of a 2-second token", async () => {
    const customer = uid('cus');
    const tokens = paywireTokens(customer, 2);
    const seen: BillingSnapshot[] = [];
    const stop = subscribeBillingState(
      { getToken: tokens.getToken, customerId: customer, refreshBeforeMs: 700 },
      (s) => seen.push(s),
    );
    await until(() => seen.at(-1)?.status === 'live');
    await sendEvent(
      app.url,
      stripeEvent<Stripe.CustomerCreatedEvent>('customer.created', {
        id: customer,
        object: 'customer',
        email: 'first@example.com',
      }),
      WEBHOOK_SECRET,
    );
    await until(() => seen.at(-1)?.state?.email === 'first@example.com');
    // Outlive several tokens: the client must have swapped in fresh ones before each expired.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    expect(tokens.calls()).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)?.status).toBe('live');
    // Swapped before expiry: the broker never had to cut it off.
    expect(seen.some((snapshot) => snapshot.status === 'reconnecting')).toBe(false);
    await sendEvent(
      app.url,
      stripeEvent<Stripe.CustomerUpdatedEvent>(
        'customer.updated',
        { id: customer, object: 'customer', email: 'second@example.com' },
        { created: Math.floor(Date.now() / 1000) + 5 },
      ),
      WEBHOOK_SECRET,
    );
    await until(() => seen.at(-1)?.state?.email === 'second@example.com');
    stop();
  }, 30_000);
});

describe('against a broker the test controls', () => {
  it('ignores a state whose version is older than the one shown', async () => {
    const customer = uid('cus');
    const topic = `billing/customers/${customer}/state`;
    const shown: Array<number | undefined> = [];
    const stop = subscribeBillingState(
      { getToken: localTokens(customer).getToken, customerId: customer },
      (s) => shown.push(s.state?.version),
    );
    await until(
      () => local.clients() > 0 && sharedConnection({ customerId: customer })?.current().status === 'live',
    );
    await local.publish(topic, state(customer, 5, 'v5@example.com'));
    await until(() => shown.at(-1) === 5);
    await local.publish(topic, state(customer, 3, 'v3@example.com'));
    await local.publish(topic, state(customer, 7, 'v7@example.com'));
    await until(() => shown.at(-1) === 7);
    expect(shown).not.toContain(3);
    expect(sharedConnection({ customerId: customer })?.current().state?.email).toBe('v7@example.com');
    stop();
  });

  it('reconnects with a fresh token after its connection is dropped', async () => {
    const customer = uid('cus');
    const tokens = localTokens(customer);
    const statuses: string[] = [];
    const stop = subscribeBillingState(
      { getToken: tokens.getToken, customerId: customer, minBackoffMs: 50 },
      (s) => statuses.push(s.status),
    );
    await until(() => statuses.at(-1) === 'live');
    local.dropEveryone();
    await until(() => statuses.includes('reconnecting'));
    await until(() => statuses.at(-1) === 'live');
    expect(tokens.calls()).toBe(2);
    stop();
  });

  it('keeps one connection through an immediate unsubscribe and subscribe (StrictMode)', async () => {
    const customer = uid('cus');
    const tokens = localTokens(customer);
    const options = { getToken: tokens.getToken, customerId: customer };
    const first = subscribeBillingState(options, () => undefined);
    first();
    const second = subscribeBillingState(options, () => undefined);
    await until(() => sharedConnection({ customerId: customer })?.current().status === 'live');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sharedConnection({ customerId: customer })?.connections).toBe(1);
    expect(tokens.calls()).toBe(1);
    second();
    await until(() => sharedConnection({ customerId: customer }) === undefined);
  });
});

it('renders on the server without connecting (no token fetched, no connection)', () => {
  const customer = uid('cus');
  const tokens = localTokens(customer);
  function Plan() {
    const { state } = useBillingState({ getToken: tokens.getToken, customerId: customer });
    return createElement('p', null, state ? 'ready' : 'activating…');
  }
  expect(renderToString(createElement(Plan))).toBe('<p>activating…</p>');
  expect(tokens.calls()).toBe(0);
  expect(sharedConnection({ customerId: customer })).toBeUndefined();
});
