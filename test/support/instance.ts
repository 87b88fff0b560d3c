import type { SqlExecutor } from '../../src/database/database.js';
/**
 * What the tests ask a running Paywire instance over HTTP, by its base URL: its readiness, whether it has
 * projected everything stored, a customer's state through the admin API, and a whole replay run to its
 * end. Shared by the tests that run real server processes.
 */
import type { BillingState } from '../../src/billing/billing-state.js';
import { ADMIN_KEY } from './app.js';
import { poll } from './until.js';

export const adminHeaders = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

export interface Readiness {
  status: string;
  instance: string;
  projector: { projecting: boolean; checkpoint: number; behind: number };
}

export async function readiness(url: string): Promise<Readiness> {
  return (await (await fetch(`${url}/health/ready`)).json()) as Readiness;
}

/** Resolves once the projections (shared by every instance) hold everything stored. */
export function settled(url: string, timeoutMs = 20_000): Promise<Readiness> {
  return poll(
    () => readiness(url),
    (ready) => ready.projector?.behind === 0,
    timeoutMs,
  );
}

/** The customer's state from the admin API, or null when the instance has none (404). */
export async function stateOn(url: string, customerId: string): Promise<BillingState | null> {
  const response = await fetch(`${url}/admin/customers/${customerId}`, { headers: adminHeaders });
  return response.status === 200 ? ((await response.json()) as BillingState) : null;
}

/** Starts a replay on `url` and waits until it has ended, read on `readOn` (the same instance by default). */
export async function replayToEnd(
  url: string,
  readOn = url,
  timeoutMs = 30_000,
): Promise<{ state: string; processed: number }> {
  const started = await fetch(`${url}/admin/replay`, { method: 'POST', headers: adminHeaders });
  if (started.status !== 202) throw new Error(`replay not started: ${started.status}`);
  const { jobId } = (await started.json()) as { jobId: string };
  return poll(
    async () =>
      (await (await fetch(`${readOn}/admin/replay/${jobId}`, { headers: adminHeaders })).json()) as {
        state: string;
        processed: number;
      },
    (job) => job.state !== 'running',
    timeoutMs,
  );
}

/** Ids of the log's events that have no outcome yet (pending: migrations/1763900900000-EventOutcomes.ts). */
export function pendingEvents(sql: SqlExecutor): Promise<Array<{ id: string }>> {
  return sql.query(
    `SELECT id FROM stripe_events e WHERE NOT EXISTS (SELECT 1 FROM stripe_event_outcomes o WHERE o.position = e.position)`,
  );
}
