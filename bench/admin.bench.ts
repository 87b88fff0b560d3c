/**
 * `npm run bench:admin`: p50/p99 latency of the customer lookup (`GET /admin/customers/:id`) and of an
 * events page (`GET /admin/events?customerId=…&limit=50`, and the unfiltered first page) over HTTP, with
 * 1,000,000 events and 100,000 customers in the database, beside the same queries run directly with `pg`
 * (the ceiling). The rows are generated inside PostgreSQL (generate_series) so that the fill takes
 * seconds; their shape is the one the projector writes.
 */
import http from 'node:http';
import pg from 'pg';
import { listEvents } from '../src/event-log/event-pages.js';
import { BENCH_SECRETS, freshDatabase, machine, percentile, startPaywire, table } from './support.js';

const EVENTS = Number(process.env.BENCH_ADMIN_EVENTS ?? 1_000_000);
const CUSTOMERS = Number(process.env.BENCH_ADMIN_CUSTOMERS ?? 100_000);
const SAMPLES = Number(process.env.BENCH_ADMIN_SAMPLES ?? 2000);
const KEY = BENCH_SECRETS.ADMIN_API_KEY;

async function fill(pool: pg.Pool): Promise<void> {
  await pool.query(
    `INSERT INTO stripe_events (id, type, created, customer_id, object_id, payload)
     SELECT 'evt_' || lpad(i::text, 9, '0'), 'customer.subscription.updated', to_timestamp(1790000000 + i),
            'cus_' || lpad((i % $2)::text, 7, '0'), 'sub_' || lpad((i % $2)::text, 7, '0'),
            jsonb_build_object('id', 'evt_' || i, 'object', 'event', 'type', 'customer.subscription.updated',
              'created', 1790000000 + i, 'data', jsonb_build_object('object', jsonb_build_object('id', 'sub_' || (i % $2),
              'object', 'subscription', 'customer', 'cus_' || (i % $2), 'status', 'active', 'padding', repeat('x', 3000))))
       FROM generate_series(1, $1) AS i`,
    [EVENTS, CUSTOMERS],
  );
  await pool.query(
    `INSERT INTO stripe_event_outcomes (position, outcome) SELECT position, 'applied' FROM stripe_events`,
  );
  await pool.query(
    `INSERT INTO billing_customers (customer_id, user_id, email, deleted, state, view, version)
     SELECT id, 'user_' || i, 'c' || i || '@example.com', false, '{}'::jsonb,
            jsonb_build_object('customerId', id, 'userId', 'user_' || i, 'email', 'c' || i || '@example.com', 'deleted', false,
              'entitlements', jsonb_build_array(jsonb_build_object('feature', 'pro', 'source', 'subscription', 'sourceId', 'sub_' || i, 'until', null)),
              'subscriptions', jsonb_build_array(jsonb_build_object('id', 'sub_' || i, 'status', 'active', 'items', '[]'::jsonb)),
              'payment', jsonb_build_object('status', 'ok', 'lastInvoiceId', null, 'lastError', null),
              'purchases', '[]'::jsonb, 'version', i, 'asOf', null), i
       FROM (SELECT i, 'cus_' || lpad(i::text, 7, '0') AS id FROM generate_series(0, $1 - 1) AS i) c`,
    [CUSTOMERS],
  );
  await pool.query(`UPDATE projector_checkpoints SET position = (SELECT max(position) FROM stripe_events)`);
  await pool.query(`ANALYZE`);
}

function get(port: number, agent: http.Agent, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(
        { host: '127.0.0.1', port, path, agent, headers: { authorization: `Bearer ${KEY}` } },
        (response) => {
          response.resume();
          response.on('end', () =>
            response.statusCode === 200
              ? resolve(performance.now() - t0)
              : reject(new Error(`${path}: ${response.statusCode}`)),
          );
        },
      )
      .on('error', reject);
  });
}

async function measure(run: (i: number) => Promise<number | void>): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    const reported = await run(i);
    times.push(typeof reported === 'number' ? reported : performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: Number(percentile(times, 50).toFixed(2)), p99: Number(percentile(times, 99).toFixed(2)) };
}

async function main() {
  const db = await freshDatabase('paywire_bench_admin');
  const { app, port } = await startPaywire(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  const fillStarted = performance.now();
  await fill(pool);
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const direct = {
    query: async <T>(text: string, params?: unknown[]) => (await pool.query(text, params)).rows as T[],
  };
  const customer = (i: number) => `cus_${String((i * 7919) % CUSTOMERS).padStart(7, '0')}`;

  const rows: Array<Array<string | number>> = [];
  const record = (what: string, via: string, r: { p50: number; p99: number }) =>
    rows.push([what, via, r.p50, r.p99]);
  await measure((i) => get(port, agent, `/admin/customers/${customer(i)}`));
  record(
    'customer lookup',
    'pg',
    await measure((i) =>
      pool
        .query(`SELECT view FROM billing_customers WHERE customer_id = $1`, [customer(i)])
        .then(() => undefined),
    ),
  );
  record(
    'customer lookup',
    'HTTP /admin/customers/:id',
    await measure((i) => get(port, agent, `/admin/customers/${customer(i)}`)),
  );
  record(
    "a customer's events page (50)",
    'pg (same SQL)',
    await measure((i) => listEvents(direct, { customerId: customer(i), limit: 50 }).then(() => undefined)),
  );
  record(
    "a customer's events page (50)",
    'HTTP /admin/events?customerId=',
    await measure((i) => get(port, agent, `/admin/events?customerId=${customer(i)}&limit=50`)),
  );
  record(
    'newest events page (50)',
    'pg (same SQL)',
    await measure(() => listEvents(direct, { limit: 50 }).then(() => undefined)),
  );
  record(
    'newest events page (50)',
    'HTTP /admin/events',
    await measure(() => get(port, agent, `/admin/events?limit=50`)),
  );

  agent.destroy();
  await pool.end();
  await app.close();
  await db.drop();
  console.log(
    `\nMachine: ${machine()}; ${EVENTS} events, ${CUSTOMERS} customers (filled in ${fillSeconds.toFixed(0)} s); ${SAMPLES} sequential requests each\n`,
  );
  console.log(table(['query', 'via', 'p50 ms', 'p99 ms'], rows));
}

await main();
