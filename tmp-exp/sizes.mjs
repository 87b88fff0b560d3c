import pg from 'pg';
import { freshDatabase, startPaywire } from '../dist/bench/support.js';
import { loadOverHttp } from '../dist/bench/http-load.js';
const db = await freshDatabase('paywire_exp');
const p = await startPaywire(db.url);
await loadOverHttp('x', `http://127.0.0.1:${p.port}/webhooks/stripe`, 16, 3000, 0, false);
await new Promise((r) => setTimeout(r, 2000));
const c = new pg.Client({ connectionString: db.url }); await c.connect();
for (const q of [
  `SELECT avg(octet_length(state::text))::int AS state, avg(octet_length(view::text))::int AS view FROM billing_customers`,
  `SELECT avg(octet_length(payload::text))::int AS feed FROM billing_feed`,
  `SELECT avg(octet_length(payload::text))::int AS payload, avg(octet_length(fold_input::text))::int AS fold FROM stripe_events`,
  `SELECT avg(octet_length(view::text))::int AS sub FROM billing_subscriptions`,
]) console.log((await c.query(q)).rows[0]);
await c.end(); await p.app.close(); await db.drop();
