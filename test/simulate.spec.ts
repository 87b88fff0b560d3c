/**
 * `paywire simulate` against a running Paywire: each scenario ends in the state its story tells, in
 * order and also shuffled with duplicates, sent concurrently (the fold does not care how Stripe delivers).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BillingState } from '../src/billing/billing-state.js';
import type { ScenarioName } from '../src/cli/scenarios.js';
import { simulate } from '../src/cli/simulate.js';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let app: RunningApp;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db, {
    CATALOG_FILE: fileURLToPath(new URL('../examples/catalog.yaml', import.meta.url)),
  });
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

async function run(scenario: ScenarioName, shuffled: boolean): Promise<BillingState[]> {
  const result = await simulate({
    url: app.url,
    secret: WEBHOOK_SECRET,
    scenario,
    shuffle: shuffled,
    duplicates: shuffled,
    customers: 8,
  });
  expect(Object.keys(result.answers).sort()).toEqual(shuffled ? ['duplicate', 'stored'] : ['stored']);
  expect(result.answers.stored).toBe(result.distinct);
  app.projector.wake();
  await app.projector.idle();
  return Promise.all(
    result.customers.map(async (customer) => {
      const response = await fetch(`${app.url}/admin/customers/${customer}`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      expect(response.status).toBe(200);
      return (await response.json()) as BillingState;
    }),
  );
}

const features = (state: BillingState) => state.entitlements.map((e) => e.feature);

describe.each([
  ['in order', false],
  ['shuffled, with duplicates, concurrently', true],
])('simulate %s', (_how, shuffled) => {
  it('lifecycle: trial, active, past due, recovered, upgraded to team, canceled', async () => {
    const [state] = await run('lifecycle', shuffled);
    expect(state.subscriptions).toMatchObject([
      { status: 'canceled', items: [{ lookupKey: 'team_monthly' }] },
    ]);
    expect(state.payment.status).toBe('ok');
    expect(state.entitlements).toEqual([]);
    expect(state.userId).toMatch(/^user_sim/);
  });

  it('purchase: a paid lifetime plan, then fully refunded', async () => {
    const [state] = await run('purchase', shuffled);
    expect(state.purchases).toMatchObject([
      { status: 'refunded', amountTotal: 4900, features: ['lifetime'] },
    ]);
    expect(state.entitlements).toEqual([]);
  });

  it('dispute: reached through the charge, opened and closed, the purchase kept', async () => {
    const [state] = await run('dispute', shuffled);
    expect(state.payment.status).toBe('ok');
    expect(features(state)).toEqual(['lifetime']);
  });

  it('dunning: three failed payments, unpaid, canceled', async () => {
    const [state] = await run('dunning', shuffled);
    expect(state.subscriptions).toMatchObject([{ status: 'canceled' }]);
    expect(state.payment.status).toBe('past_due');
    expect(state.entitlements).toEqual([]);
  });

  it('many: every customer ends where its story ends', async () => {
    const states = await run('many', shuffled);
    expect(states).toHaveLength(8);
    for (const state of states)
      expect(features(state).filter((feature) => feature !== 'lifetime')).toEqual([]);
  });
});
