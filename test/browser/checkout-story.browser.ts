/**
 * The seeds' story end to end (issue 12): `examples/nextjs` (its production build, `next start`) runs
 * against Paywire and fake-stripe, and headless Chromium does what a customer does: signs in, clicks
 * Subscribe, pays on the (fake) hosted checkout, lands on the success page that says "Activating…", and
 * sees "pro" arrive over MQTT without a reload. Then the same with every webhook dropped: gap healing
 * finds the events in Stripe's API and "pro" arrives within two healing intervals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';
import { FakeStripe } from '../../src/fake-stripe/fake-stripe.js';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freePort } from '../../bench/free-port.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const EXAMPLE = 'examples/nextjs';
const HEAL_INTERVAL_SECONDS = 3;

let db: TestDatabase;
let fake: FakeStripe;
let app: RunningApp;
let next: ChildProcess;
let exampleUrl: string;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (see .ci/run)`);
  if (!existsSync(`${EXAMPLE}/.next/BUILD_ID`)) {
    throw new Error(`the example is not built: (cd ${EXAMPLE} && npm ci && npm run build), as .ci/run does`);
  }
  db = await createTestDatabase();
  fake = await new FakeStripe({ webhookSecret: WEBHOOK_SECRET }).start();
  app = await startApp(db, {
    STRIPE_SECRET_KEY: 'sk_test_story',
    STRIPE_API_URL: fake.url,
    GAP_HEAL_INTERVAL_SECONDS: String(HEAL_INTERVAL_SECONDS),
  });
  fake.configureWebhooks({ url: `${app.url}/webhooks/stripe` });

  const port = await freePort();
  exampleUrl = `http://127.0.0.1:${port}`;
  next = spawn(
    process.execPath,
    ['node_modules/next/dist/bin/next', 'start', '--port', String(port), '--hostname', '127.0.0.1'],
    {
      cwd: EXAMPLE,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        NEXT_TELEMETRY_DISABLED: '1',
        PAYWIRE_URL: app.url,
        PAYWIRE_ADMIN_KEY: ADMIN_KEY,
        STRIPE_SECRET_KEY: 'sk_test_story',
        STRIPE_API_URL: fake.url,
        STRIPE_PRICE_ID: fake.products[0].priceId,
      },
      stdio: 'ignore',
    },
  );
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(exampleUrl)).ok) break;
    } catch {
      if (i > 300) throw new Error('next start did not answer');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-sync',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  next?.kill('SIGTERM');
  await app?.close();
  await fake?.close();
  await db?.drop();
});

/** Signs in, subscribes and pays; resolves on the success page, marked so that a reload would show. */
async function subscribeAndPay(page: Page, userId: string): Promise<void> {
  await page.goto(exampleUrl);
  await page.getByLabel('user id').fill(userId);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${exampleUrl}/`);
  await page.getByRole('button', { name: 'Subscribe' }).click();
  await page.waitForURL(/\/checkout\/cs_test_/);
  expect(await page.textContent('body')).toContain('Pro: 20.00 USD / month');
  await page.getByRole('button', { name: 'Pay' }).click();
  await page.waitForURL(`${exampleUrl}/success`);
  await page.evaluate(() => ((window as unknown as { landed: boolean }).landed = true));
}

const landedWithoutReload = (page: Page) =>
  page.evaluate(() => (window as unknown as { landed?: boolean }).landed === true);

it('shows "Activating…" after checkout, then "pro" pushed by MQTT without a reload', async () => {
  // Stripe's webhooks are a moment behind the redirect, as they are in life.
  fake.configureWebhooks({ mode: 'deliver', delayMs: 1500 });
  const page = await browser.newPage();
  await subscribeAndPay(page, 'user_story_webhooks');
  await page.getByText('Activating…').waitFor({ timeout: 5000 });
  await page.getByText('You are now pro').waitFor({ timeout: 10_000 });
  expect(await landedWithoutReload(page)).toBe(true);
  await page.close();
}, 60_000);

it('with every webhook dropped, gap healing brings "pro" within two intervals', async () => {
  fake.configureWebhooks({ mode: 'drop', delayMs: 0 });
  const page = await browser.newPage();
  await subscribeAndPay(page, 'user_story_no_webhooks');
  const paidAt = Date.now();
  await page.getByText('Activating…').waitFor({ timeout: 5000 });
  // Two intervals, and a little for the projection and the push.
  await page.getByText('You are now pro').waitFor({ timeout: 2 * HEAL_INTERVAL_SECONDS * 1000 + 2000 });
  expect(await landedWithoutReload(page)).toBe(true);
  expect(Date.now() - paidAt).toBeLessThan(2 * HEAL_INTERVAL_SECONDS * 1000 + 2000);

  const customers = (await (
    await fetch(`${app.url}/admin/customers?userId=user_story_no_webhooks`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
  ).json()) as { data: Array<{ customerId: string }> };
  const events = (await (
    await fetch(`${app.url}/admin/events?customerId=${customers.data[0].customerId}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
  ).json()) as { data: Array<{ source: string }> };
  expect(events.data.length).toBeGreaterThan(0);
  expect(new Set(events.data.map((event) => event.source))).toEqual(new Set(['api']));
  await page.close();
}, 60_000);
