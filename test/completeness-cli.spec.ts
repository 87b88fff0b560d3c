/**
 * `paywire fake-stripe`, `paywire backfill` and `paywire reconcile` as a user runs them (SPEC section 7):
 * real processes. The fake runs as its own process and drops every webhook; a checkout completed on its
 * page reaches Paywire only through the backfill command, and a cancellation only through reconcile.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { BillingState } from '../src/billing/billing-state.js';
import { createStripeApi } from '../src/stripe-api/stripe-api.js';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let app: RunningApp;
let fakeProcess: ChildProcess;
let fakeUrl: string;

const env = {
  PATH: process.env.PATH,
  NODE_ENV: 'test',
  ADMIN_API_KEY: ADMIN_KEY,
  STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
  MQTT_TOKEN_SECRET: 'mqtt-token-secret-for-tests-0123456789abcdef',
};

beforeAll(async () => {
  db = await createTestDatabase();
  fakeProcess = spawn(
    process.execPath,
    [
      'dist/src/cli/main.js',
      'fake-stripe',
      '--port',
      '0',
      '--drop-webhooks',
      '--webhook-url',
      'http://127.0.0.1:9/none',
    ],
    { env: { ...env, DATA_DIR: db.dataDir }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  fakeUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    fakeProcess.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /fake Stripe at (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]);
    });
    fakeProcess.once('exit', () => reject(new Error(`fake-stripe exited: ${output}`)));
  });
  app = await startApp(db, {
    STRIPE_SECRET_KEY: 'sk_test_cli',
    STRIPE_API_URL: fakeUrl,
    GAP_HEAL_INTERVAL_SECONDS: '0',
  });
}, 30_000);

afterAll(async () => {
  fakeProcess?.kill('SIGTERM');
  await app?.close();
  await db?.drop();
});

/** Runs the CLI without blocking this process's event loop, where the server it talks to runs. */
function paywire(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['dist/src/cli/main.js', ...args, '--url', app.url], {
    env: { ...env, DATA_DIR: db.dataDir },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

async function stateOfUser(userId: string): Promise<BillingState | undefined> {
  const response = await fetch(`${app.url}/admin/customers?userId=${userId}`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  return ((await response.json()) as { data: BillingState[] }).data[0];
}

it('backfills a checkout whose webhooks were dropped, then reconciles a cancellation', async () => {
  const stripe = createStripeApi({ secretKey: 'sk_test_cli', apiUrl: fakeUrl, ratePerSecond: 50 });
  const session = await stripe.checkout.sessions.create({
    mode: 'subscription',
    line_items: [{ price: 'price_pro_monthly', quantity: 1 }],
    metadata: { userId: 'user_cli' },
    success_url: 'http://example.test/success?session={CHECKOUT_SESSION_ID}',
  });
  const page = await fetch(session.url!);
  expect(await page.text()).toContain('<button type="submit">Pay</button>');
  const paid = await fetch(`${fakeUrl}/checkout/${session.id}/complete`, {
    method: 'POST',
    redirect: 'manual',
  });
  expect(paid.status).toBe(303);
  expect(paid.headers.get('location')).toBe(`http://example.test/success?session=${session.id}`);
  expect(await stateOfUser('user_cli')).toBeUndefined();

  const backfill = await paywire('backfill', '--since', String(Math.floor(Date.now() / 1000) - 3600));
  expect(backfill.stderr).toBe('');
  expect(backfill.status).toBe(0);
  expect(backfill.stdout).toMatch(/fetched \d+ events: [1-9]\d* stored/);
  await app.settle();
  const state = await stateOfUser('user_cli');
  expect(state?.entitlements.map((entitlement) => entitlement.feature)).toContain('pro');

  const { subscription } = await stripe.checkout.sessions.retrieve(session.id);
  expect(
    (await fetch(`${fakeUrl}/_fake/subscriptions/${subscription}/cancel`, { method: 'POST' })).status,
  ).toBe(200);
  const check = await paywire('reconcile', '--customer', state!.customerId);
  expect(check.status).toBe(0);
  expect(check.stdout).toContain(
    `subscriptions[${subscription}].status  paywire="active"  stripe="canceled"`,
  );
  const repair = await paywire('reconcile', '--customer', state!.customerId, '--repair');
  expect(repair.stdout).toMatch(/checked 1 customer: \d+ differences?, 1 repaired/);
  await app.settle();
  expect((await stateOfUser('user_cli'))?.subscriptions[0].status).toBe('canceled');
}, 60_000);
