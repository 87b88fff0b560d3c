/**
 * Signed webhooks sent over keep-alive HTTP from a worker thread (`load-worker.ts`), and the events/s and
 * time-to-acknowledge percentiles of a run: the load of `bench:ingest` and `bench:profile`.
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
  const signatures = bodies.map((payload) =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret: BENCH_SECRETS.STRIPE_WEBHOOK_SECRET }),
  );
  return { bodies, signatures };
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

export function loadOverHttp(
  name: string,
  url: string,
  concurrency: number,
  count: number,
  offset: number,
  spread = false,
): Promise<Result> {
  const { bodies, signatures } = prepare(count, offset, spread);
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), {
      workerData: { url, bodies, signatures, concurrency },
    });
    worker.once('message', (message: { latencies: number[]; elapsed: number; failures: number }) =>
      resolve(summarise(name, concurrency, message.latencies, message.elapsed, message.failures)),
    );
    worker.once('error', reject);
  });
}
