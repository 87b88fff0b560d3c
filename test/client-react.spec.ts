/**
 * @jest-environment jsdom
 * @jest-environment-options {"customExportConditions": ["node", "node-addons"]}
 *
 * `useBillingState` in React 19 under StrictMode, in a DOM (jsdom) whose WebSocket really connects: the
 * double mount keeps one connection and the component renders the pushed state. The broker runs in a
 * child process (Aedes needs Node's globals); packages resolve to their Node builds, so mqtt.js speaks
 * through `ws` here. (Server rendering is
 * checked in client.spec.ts, in Node, where it happens.)
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { StrictMode, act, createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { sharedConnection, type BillingToken } from '../src/client/index.js';
import { useBillingState } from '../src/client/react.js';
import { until } from './support/until.js';
import { startBrokerProcess, type BrokerProcess } from './support/broker-process.js';

let local: BrokerProcess;
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

beforeAll(async () => {
  local = await startBrokerProcess();
});

afterAll(async () => {
  await local?.stop();
});

let tokenCalls = 0;
const getToken = async (): Promise<BillingToken> => {
  tokenCalls++;
  return {
    token: 't',
    url: local.url,
    clientId: `cus_react:${tokenCalls}`,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  };
};

function Plan() {
  // jsdom has no Worker, which mqtt.js's default browser timers need.
  const { state, status } = useBillingState({
    getToken,
    customerId: 'cus_react',
    mqttOptions: { timerVariant: 'native' },
  });
  const pro = state?.entitlements.some((e) => e.feature === 'pro');
  return createElement('p', { id: 'plan' }, `${status}: ${pro ? 'You are now Pro' : 'activating…'}`);
}

it('keeps one connection under StrictMode and shows the pushed state', async () => {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  await act(async () => root.render(createElement(StrictMode, null, createElement(Plan))));
  await act(async () => until(() => container.textContent?.startsWith('live') === true));
  expect(sharedConnection({ customerId: 'cus_react' })?.connections).toBe(1);
  expect(await local.clients()).toBe(1);

  await act(async () => {
    await local.publish('billing/customers/cus_react/state', {
      customerId: 'cus_react',
      version: 3,
      entitlements: [{ feature: 'pro', source: 'subscription', sourceId: 'sub_1', until: null }],
      subscriptions: [],
      purchases: [],
      payment: { status: 'ok', lastInvoiceId: null, lastError: null },
    });
    await until(() => container.textContent === 'live: You are now Pro');
  });
  expect(container.textContent).toBe('live: You are now Pro');

  await act(async () => root.unmount());
  await until(() => sharedConnection({ customerId: 'cus_react' }) === undefined);
  for (let i = 0; i < 100 && (await local.clients()) > 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await local.clients()).toBe(0);
});
