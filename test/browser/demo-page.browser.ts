/**
 * The browser test (issue 4): real headless Chromium (Debian's `chromium`, driven by playwright-core)
 * opens the demo page Paywire serves; the page connects with `mqtt` over WebSocket, shows the customer's
 * entitlements, and changes within a second after a signed webhook changes them.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sendEvent, subscriptionEvent, uid } from '../support/stripe.js';
import { simulate } from '../../src/cli/simulate.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let db: TestDatabase;
let app: RunningApp;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (see .ci/run)`);
  db = await createTestDatabase();
  const catalogFile = join(db.dataDir, 'catalog.json');
  writeFileSync(catalogFile, JSON.stringify({ prices: { price_pro: ['pro'], price_team: ['pro', 'team'] } }));
  app = await startApp(db, { CATALOG_FILE: catalogFile });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await db?.drop();
});

it('shows the entitlements and updates within a second of a webhook', async () => {
  const customer = uid('cus');
  const now = Math.floor(Date.now() / 1000);
  expect(
    (
      await sendEvent(
        app.url,
        subscriptionEvent(customer, { type: 'created', price: 'price_pro', created: now - 60 }),
        WEBHOOK_SECRET,
      )
    ).status,
  ).toBe(200);
  const minted = await fetch(`${app.url}/admin/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ customerId: customer }),
  });
  const { token } = (await minted.json()) as { token: string };

  const page = await browser.newPage();
  await page.goto(`${app.url}/demo?customer=${customer}#token=${token}`);
  await page.waitForSelector('#entitlements li[data-feature="pro"]', { timeout: 10_000 });
  expect(await page.locator('#status').textContent()).toBe('live');
  expect(await page.locator('#entitlements li[data-feature="team"]').count()).toBe(0);

  const answer = await sendEvent(
    app.url,
    subscriptionEvent(customer, { type: 'updated', price: 'price_team', created: now }),
    WEBHOOK_SECRET,
  );
  expect(answer.status).toBe(200);
  await page.waitForSelector('#entitlements li[data-feature="team"]', { timeout: 1000 });

  const rest = (await (
    await fetch(`${app.url}/admin/customers/${customer}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
  ).json()) as {
    entitlements: Array<{ feature: string }>;
  };
  const shown = await page
    .locator('#entitlements li')
    .evaluateAll((items) =>
      items.map((item) => (item as unknown as { dataset: { feature?: string } }).dataset.feature),
    );
  expect(shown).toEqual(rest.entitlements.map((e) => e.feature));
  // Kept for a person to look at: what the page showed at the end.
  await page.screenshot({ path: join(tmpdir(), 'paywire-demo.png') });
  await page.close();
});

it('follows a simulated lifecycle live and ends on the state the admin API reports', async () => {
  const page = await browser.newPage();
  let customer = '';
  await simulate({
    url: app.url,
    secret: WEBHOOK_SECRET,
    scenario: 'lifecycle',
    delayMs: 50,
    onStart: async ([first]) => {
      customer = first;
      const minted = await fetch(`${app.url}/admin/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ customerId: first }),
      });
      const { token } = (await minted.json()) as { token: string };
      await page.goto(`${app.url}/demo?customer=${first}#token=${token}`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');
    },
  });
  app.projector.wake();
  await app.projector.idle();
  const rest = (await (
    await fetch(`${app.url}/admin/customers/${customer}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
  ).json()) as { version: number; payment: { status: string } };
  await page.waitForFunction(
    (version) => document.getElementById('version')?.textContent === String(version),
    rest.version,
    {
      timeout: 5000,
    },
  );
  const shown = JSON.parse((await page.locator('#state').textContent()) ?? '{}') as unknown;
  expect(shown).toEqual(rest);
  expect(await page.locator('#entitlements').textContent()).toBe('none');
  await page.close();
});
