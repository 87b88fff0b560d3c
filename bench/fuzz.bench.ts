/**
 * `npm run bench:fuzz`: 100,000 generated webhook requests (BENCH_FUZZ_REQUESTS) from
 * bench/webhook-cases.ts against the built server in its own process, 16 at a time: how many unsigned
 * requests were accepted, how many answers were 5xx, whether the process survived, how many rows the
 * rejected requests left in the log, and the time to reject (p50, p99) beside the time to accept a valid
 * event in the same run.
 */
import fc from 'fast-check';
import pg from 'pg';
import { BENCH_SECRETS, freshDatabase, machine, percentile, spawnPaywire, table } from './support.js';
import { sendCase, webhookCases } from './webhook-cases.js';

const REQUESTS = Number(process.env.BENCH_FUZZ_REQUESTS ?? 100_000);
const CONCURRENCY = 16;
const TOLERANCE = 300;

const db = await freshDatabase('paywire_bench_fuzz');
const server = await spawnPaywire(db.url);
const url = server.url;

const cases = webhookCases(BENCH_SECRETS.STRIPE_WEBHOOK_SECRET, TOLERANCE);
const reject: number[] = [];
const accept: number[] = [];
let unsignedAccepted = 0;
let serverErrors = 0;
let wrongAnswers = 0;
const wrongByKind = new Map<string, number>();
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      next++;
      // Made just before it is sent: a case signed "5 s inside the tolerance" must still be when it lands.
      const [testCase] = fc.sample(cases, 1);
      const started = performance.now();
      const answer = await sendCase(url, testCase).catch(() => ({ status: 0, body: '' }));
      const ms = performance.now() - started;
      if (answer.status >= 500) serverErrors++;
      if (answer.status !== testCase.expect) {
        wrongAnswers++;
        const key = `${testCase.kind}: ${answer.status} for ${testCase.expect}`;
        wrongByKind.set(key, (wrongByKind.get(key) ?? 0) + 1);
      }
      if (answer.status === 200 && testCase.expect !== 200) unsignedAccepted++;
      (answer.status === 200 ? accept : reject).push(ms);
    }
  }),
);

const client = new pg.Client({ connectionString: db.url });
await client.connect();
const { rows } = await client.query<{ count: string }>(`SELECT count(*) FROM stripe_events`);
await client.end();
const survived = server.child.exitCode === null && server.child.signalCode === null;
await server.stop();
await db.drop();

if (wrongByKind.size > 0) console.log('unexpected answers:', Object.fromEntries(wrongByKind));
reject.sort((a, b) => a - b);
accept.sort((a, b) => a - b);
console.log(`\n${machine()}; the built server in its own process, ${CONCURRENCY} requests at a time\n`);
console.log(
  table(
    [
      'requests',
      'unsigned accepted',
      '5xx',
      'wrong answers',
      'process survived',
      'rows from rejected',
      'reject p50 / p99 ms',
      'accept p50 / p99 ms',
    ],
    [
      [
        REQUESTS,
        unsignedAccepted,
        serverErrors,
        wrongAnswers,
        survived ? 'yes' : 'no',
        Number(rows[0].count) - accept.length,
        `${percentile(reject, 50).toFixed(2)} / ${percentile(reject, 99).toFixed(2)}`,
        `${percentile(accept, 50).toFixed(2)} / ${percentile(accept, 99).toFixed(2)}`,
      ],
    ],
  ),
);
