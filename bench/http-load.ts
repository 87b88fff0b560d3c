/**
 * Signed webhooks sent over keep-alive HTTP from a worker thread (`load-worker.ts`), as Stripe's
 * deliveries come from outside Paywire's event loop: as fast as `concurrency` senders go, with the
 * events/s and time-to-acknowledge percentiles of a run (the load of `bench:ingest` and `bench:profile`),
 * or on a schedule (`sendAtRate`: `bench:push`, `bench:replay`).
 */
import { Worker } from 'node:worker_threads';
import Stripe from 'stripe';
import { BENCH_SECRETS, percentile, subscriptionEvent } from './support.js';

export interface Result {
  name: string;
  concurrency: number;
  perSecond: number;
  p50: number;
  p99: number;
  failures: number;
}

/**
 * `count` signed subscription updates for 1,000 customers. By default all in one second (`created`), so a
 * customer's later events share its state's second and are re-folded from the log; `spread` gives each
 * customer's k-th event a second of its own, as a customer's events mostly arrive.
 */
export function prepare(count: number, offset: number, spread = false) {
  const created = Math.floor(Date.now() / 1000);
  const bodies = Array.from({ length: count }, (_, i) =>
    JSON.stringify(subscriptionEvent(offset + i, 1000, created + (spread ? Math.floor(i / 1000) : 0))),
  );
  return { bodies, signatures: signAll(bodies) };
}

/** Each body's `stripe-signature` header, signed with the benchmarks' secret as Stripe signs. */
function signAll(bodies: string[]): string[] {
  return bodies.map((payload) =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret: BENCH_SECRETS.STRIPE_WEBHOOK_SECRET }),
  );
}

/** Runs `load-worker.ts` on `job` and resolves with the one message it posts. */
function inLoadWorker<T>(job: {
  url: string;
  bodies: string[];
  signatures: string[];
  concurrency: number;
  rate?: number;
}): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: job });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

export function summarise(
  name: string,
  concurrency: number,
  latencies: number[],
  elapsedMs: number,
  failures: number,
): Result {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    name,
    concurrency,
    perSecond: Math.round((latencies.length / elapsedMs) * 1000),
    p50: Number(percentile(sorted, 50).toFixed(2)),
    p99: Number(percentile(sorted, 99).toFixed(2)),
    failures,
  };
}

export async function loadOverHttp(
  name: string,
  url: string,
  concurrency: number,
  count: number,
  offset: number,
  spread = false,
): Promise<Result> {
  const { bodies, signatures } = prepare(count, offset, spread);
  const run = await inLoadWorker<{ latencies: number[]; elapsed: number; failures: number }>({
    url,
    bodies,
    signatures,
    concurrency,
  });
  return summarise(name, concurrency, run.latencies, run.elapsed, run.failures);
}

/**
 * Sends `rate` signed webhooks a second for `seconds` to Paywire on `port`, on schedule (not waiting for
 * answers). Returns when each was sent and acknowledged, by marker, in epoch milliseconds; throws if any
 * was not answered 200.
 */
export async function sendAtRate(
  port: number,
  rate: number,
  seconds: number,
  make: (i: number) => { marker: string; body: string },
): Promise<{ sentAt: Map<string, number>; ackedAt: Map<string, number> }> {
  const webhooks = Array.from({ length: rate * seconds }, (_, i) => make(i));
  const bodies = webhooks.map((webhook) => webhook.body);
  const run = await inLoadWorker<{ sentAt: number[]; answeredAt: number[]; statuses: number[] }>({
    url: `http://127.0.0.1:${port}/webhooks/stripe`,
    bodies,
    signatures: signAll(bodies),
    concurrency: 64,
    rate,
  });
  const refused = run.statuses.find((status) => status !== 200);
  if (refused !== undefined) throw new Error(`webhook answered ${refused}`);
  return {
    sentAt: new Map(webhooks.map(({ marker }, i) => [marker, run.sentAt[i]])),
    ackedAt: new Map(webhooks.map(({ marker }, i) => [marker, run.answeredAt[i]])),
  };
}
