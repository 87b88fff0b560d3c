/**
 * `npm run bench:backfill`: a backfill of N events (default 100,000; BENCH_BACKFILL_EVENTS) from a
 * fake-stripe in its own process, at the request-rate ceiling (default 20/s; BENCH_BACKFILL_RATE), with
 * the projector folding them as they land. The ceiling is 100 events a request × rate; the baseline in the
 * same run is listing the same events through the same paced client without storing anything. Memory:
 * the heap after a full GC and the RSS, sampled as the job advances.
 */
import { spawn } from 'node:child_process';
import { createStripeApi } from '../src/stripe-api/stripe-api.js';
import { eventWindows } from '../src/completeness/event-windows.js';
import { StripeSync } from '../src/completeness/stripe-sync.js';
import { BillingProjector } from '../src/projections/billing.projector.js';
import { freshDatabase, machine, startPaywire, table } from './support.js';

const RATE = Number(process.env.BENCH_BACKFILL_RATE ?? 20);
const MiB = 2 ** 20;

async function startHistory(): Promise<{ url: string; events: number; stop: () => void }> {
  const child = spawn(process.execPath, ['dist/bench/stripe-history.js'], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('\n')) resolve(output.trim());
    });
    child.once('exit', (code) => reject(new Error(`the history process exited (${code})`)));
  });
  const [url, events] = line.split(' ');
  return { url, events: Number(events), stop: () => child.kill('SIGTERM') };
}

const requestsMade = async (url: string) =>
  ((await (await fetch(`${url}/_fake/stats`)).json()) as { requests: number }).requests;

function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(process.memoryUsage().heapUsed / MiB);
}

const history = await startHistory();
const since = Math.floor(Date.now() / 1000) - 21 * 86400;
const ceiling = 100 * RATE;
process.stdout.write(
  `${history.events} events in fake-stripe; ceiling ${ceiling} events/s (${RATE} requests/s)\n`,
);

// Baseline: list everything through the same paced client, storing nothing.
const lister = createStripeApi({ secretKey: 'sk_test_bench', apiUrl: history.url, ratePerSecond: RATE });
let listed = 0;
const listHeap: number[] = [];
let requestsBefore = await requestsMade(history.url);
let started = performance.now();
for await (const window of eventWindows(lister, since)) {
  listed += window.events.length;
  if (listed >= ((listHeap.length + 1) / 4) * history.events) listHeap.push(heapMiB());
}
const listSeconds = (performance.now() - started) / 1000;
const listRequests = (await requestsMade(history.url)) - requestsBefore;

// The backfill job, in Paywire, projecting as it goes.
const db = await freshDatabase('paywire_bench_backfill');
const paywire = await startPaywire(db.url, {
  STRIPE_SECRET_KEY: 'sk_test_bench',
  STRIPE_API_URL: history.url,
  STRIPE_API_RATE: String(RATE),
  GAP_HEAL_INTERVAL_SECONDS: '0',
});
const sync = paywire.app.get(StripeSync);
const baseHeap = heapMiB();
const baseRss = Math.round(process.memoryUsage().rss / MiB);
const samples: Array<{ share: number; heap: number; rss: number }> = [];
requestsBefore = await requestsMade(history.url);
started = performance.now();
const job = await sync.startBackfill(since);
let progress;
let nextSample = 0.25;
for (;;) {
  progress = (await sync.job(job.id))!;
  const share = progress.fetched / history.events;
  if (share >= nextSample || progress.state !== 'running') {
    samples.push({ share, heap: heapMiB(), rss: Math.round(process.memoryUsage().rss / MiB) });
    nextSample += 0.25;
  }
  if (progress.state !== 'running') break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
const backfillSeconds = (performance.now() - started) / 1000;
const backfillRequests = (await requestsMade(history.url)) - requestsBefore;
const projector = paywire.app.get(BillingProjector);
projector.wake();
await projector.idle();
const projectedSeconds = (performance.now() - started) / 1000;
if (progress.state !== 'done') throw new Error(`the backfill ended ${progress.state}: ${progress.error}`);

const rate = (events: number, seconds: number) => Math.round(events / seconds);
const share = (events: number, seconds: number) => `${Math.round((100 * events) / seconds / ceiling)}%`;
process.stdout.write(
  `\n${machine()}\n\n` +
    table(
      ['run', 'events', 'requests', 'seconds', 'events/s', 'of ceiling'],
      [
        [
          'list only (baseline)',
          listed,
          listRequests,
          listSeconds.toFixed(1),
          rate(listed, listSeconds),
          share(listed, listSeconds),
        ],
        [
          'backfill (appended)',
          progress.stored,
          backfillRequests,
          backfillSeconds.toFixed(1),
          rate(progress.stored, backfillSeconds),
          share(progress.stored, backfillSeconds),
        ],
        [
          '… and projected',
          progress.stored,
          '',
          projectedSeconds.toFixed(1),
          rate(progress.stored, projectedSeconds),
          '',
        ],
      ],
    ) +
    `\n\nMemory (heap after a full GC, MiB) while listing alone, and of the Paywire process during the backfill (from ${baseHeap} MiB heap and ${baseRss} MiB RSS before the job; its broker keeps every customer's retained state in memory):\n\n` +
    table(
      ['fetched', 'list only: heap', 'backfill: heap', 'backfill: RSS MiB'],
      samples.map((sample, i) => [
        `${Math.round(sample.share * 100)}%`,
        listHeap[i] ?? '',
        sample.heap,
        sample.rss,
      ]),
    ) +
    '\n',
);
await paywire.app.close();
await db.drop();
history.stop();
