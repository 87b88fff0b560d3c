/**
 * Completeness as configured (issue 12): gap healing that cannot reach Stripe is reported by readiness
 * and metrics, without leaking the key; without `STRIPE_SECRET_KEY` the admin routes say what enables
 * them. Each test runs its own application, one at a time (embedded PGlite is one per process).
 */
import { expect, describe, it } from '@jest/globals';
import { SQL, type Sql } from '../src/database/database.js';
import { FakeStripe } from '../src/fake-stripe/fake-stripe.js';
import { ADMIN_KEY, startApp } from './support/app.js';
import { createTestDatabase } from './support/database.js';

const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

describe('gap healing that keeps failing', () => {
  it('is reported by /health/ready once three intervals pass without a successful run', async () => {
    const other = await createTestDatabase();
    const strict = await new FakeStripe({ apiKey: 'sk_test_the_right_one' }).start();
    const failing = await startApp(other, {
      STRIPE_SECRET_KEY: 'sk_test_a_revoked_one',
      STRIPE_API_URL: strict.url,
      GAP_HEAL_INTERVAL_SECONDS: '1',
    });
    try {
      const ready = async () =>
        (await (await fetch(`${failing.url}/health/ready`)).json()) as {
          status: string;
          gapHealing: { status: string; lastSuccessAt: string | null };
        };
      expect((await ready()).gapHealing.status).toBe('ok');
      await new Promise((resolve) => setTimeout(resolve, 3500));
      expect(await ready()).toMatchObject({
        status: 'degraded',
        gapHealing: { status: 'failing', lastSuccessAt: null },
      });
      const metrics = await (await fetch(`${failing.url}/metrics`)).text();
      expect(metrics).toMatch(/paywire_gap_heal_runs_total\{result="failed",instance="[^"]+"\} [1-9]/);
      expect(metrics).toMatch(/paywire_stripe_api_requests_total\{status="4xx",instance="[^"]+"\} [1-9]/);
      const failingSql: Sql = failing.app.get(SQL);
      const [{ error }] = await failingSql.query<{ error: string }>(
        `SELECT error FROM stripe_sync_jobs WHERE state = 'failed' LIMIT 1`,
      );
      expect(error).toContain('StripeAuthenticationError (401)');
      expect(error).not.toContain('sk_test_a_revoked_one');
    } finally {
      await failing.close();
      await strict.close();
      await other.drop();
    }
  }, 30_000);
});

describe('without STRIPE_SECRET_KEY', () => {
  it('answers the completeness routes with 501 naming the variable', async () => {
    const other = await createTestDatabase();
    const plain = await startApp(other);
    try {
      const response = await fetch(`${plain.url}/admin/backfill`, {
        method: 'POST',
        headers: admin,
        body: '{}',
      });
      expect(response.status).toBe(501);
      expect(((await response.json()) as { message: string }).message).toContain('STRIPE_SECRET_KEY');
    } finally {
      await plain.close();
      await other.drop();
    }
  });
});
