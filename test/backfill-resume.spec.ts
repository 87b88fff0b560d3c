/**
 * A backfill survives the death of its process (issue 12): the server is SIGKILLed while a backfill runs,
 * and the restarted server continues the job from its stored cursor instead of from the beginning; every
 * event Stripe has ends up in the log exactly once.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { FakeStripe } from '../src/fake-stripe/fake-stripe.js';
import { ADMIN_KEY } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { serverProcess, type ServerProcess } from './support/server-process.js';
import { poll } from './support/until.js';

let db: TestDatabase;
let fake: FakeStripe;
let server: ServerProcess;

const HOURS = 3;
const LIFECYCLES = 600;

beforeAll(async () => {
  db = await createTestDatabase();
  // Three hours of history, no webhooks sent: only the API has these events.
  fake = await new FakeStripe({ clockOffset: -HOURS * 3600 }).start();
  for (let i = 0; i < LIFECYCLES; i++) {
    fake.clockOffset += (HOURS * 3600) / LIFECYCLES;
    fake.completeCheckout(
      fake.createCheckoutSession({
        mode: 'subscription',
        line_items: [{ price: fake.products[0].priceId }],
        metadata: { userId: `user_${i}` },
        success_url: 'http://example.test/success',
      }).id,
    );
  }
  server = await serverProcess(db, {
    STRIPE_SECRET_KEY: 'sk_test_paywire',
    STRIPE_API_URL: fake.url,
    // Slow enough that the job is caught between its windows.
    STRIPE_API_RATE: '4',
    GAP_HEAL_INTERVAL_SECONDS: '0',
  });
  await server.start();
}, 60_000);

afterAll(async () => {
  await server?.kill();
  await fake?.close();
  await db?.drop();
});

const headers = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

interface JobStatus {
  state: string;
  fetched: number;
  stored: number;
  duplicates: number;
  cursor: string;
}

/** The ids of the log's events that came from the API, through the admin API (the server holds the database). */
async function apiEventIds(): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const query: string = `source=api&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = (await (await fetch(`${server.url}/admin/events?${query}`, { headers })).json()) as {
      data: Array<{ id: string }>;
      nextCursor: string | null;
    };
    ids.push(...page.data.map((event) => event.id));
    cursor = page.nextCursor;
  }
  return ids;
}

const status = async (jobId: string) =>
  (await (await fetch(`${server.url}/admin/backfill/${jobId}`, { headers })).json()) as JobStatus;

it('resumes from its cursor after SIGKILL, and stores every event once', async () => {
  const since = fake.allEvents()[0].created;
  const started = await fetch(`${server.url}/admin/backfill`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ since }),
  });
  expect(started.status).toBe(202);
  const { jobId } = (await started.json()) as { jobId: string };

  const beforeKill = await poll(
    () => status(jobId),
    (job) => job.state === 'running' && Date.parse(job.cursor) / 1000 > since,
    30_000,
  );
  await server.kill();
  const requestsBeforeRestart = fake.requestTimes.length;

  await server.start();
  const done = await poll(
    () => status(jobId),
    (job) => job.state !== 'running',
    60_000,
  );
  expect(done.state).toBe('done');
  expect(done.fetched).toBeGreaterThan(beforeKill.fetched);

  const ids = await apiEventIds();
  expect(ids.length).toBe(new Set(ids).size);
  expect(new Set(ids)).toEqual(new Set(fake.allEvents().map((event) => event.id)));
  // The log's rows are what the job stored, before and after the kill, and the resumed process listed
  // only what lay past the cursor: fewer requests than a whole new backfill would make.
  expect(done.stored + done.duplicates).toBe(done.fetched);
  expect(done.stored).toBeGreaterThan(0);
  const wholeRun = Math.ceil(fake.allEvents().length / 100);
  expect(fake.requestTimes.length - requestsBeforeRestart).toBeLessThan(wholeRun);
}, 120_000);
