/**
 * `npm run bench:ingest`: verified webhooks acknowledged per second, and p50/p99 time to acknowledge, at
 * 1, 16 and 64 concurrent senders against real PostgreSQL, beside three baselines measured in the same
 * run: the raw rate of the same single-row `INSERT … ON CONFLICT DO NOTHING` through `pg` at the same
 * concurrency (each with its own commit, no HTTP); the tutorial handler, Fastify with
 * `stripe.webhooks.constructEvent` on the raw body and that one INSERT; and the webhook handler of
 * `@supabase/stripe-sync-engine` on the same database, fed `customer.subscription.updated` events, which
 * it stores without calling Stripe's API. Prints a Markdown table for BENCHMARKS.md.
 */
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import pg from 'pg';
import Stripe from 'stripe';
import { BillingProjector } from '../src/projections/billing.projector.js';
import { BENCH_SECRETS, freshDatabase, machine, startPaywire, table } from './support.js';
import { loadOverHttp, prepare, summarise, type Result } from './http-load.js';
import { ownPostgres } from './own-postgres.js';
import { createScratchDatabase } from './scratch-database.js';
import { listenLocally, RAW_INSERT, rawInsertValues, startTutorial } from './tutorial-server.js';

const SECRET = BENCH_SECRETS.STRIPE_WEBHOOK_SECRET;
const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);
const COUNT = Number(process.env.BENCH_EVENTS ?? 6000);

async function rawInsert(url: string, concurrency: number, count: number, offset: number): Promise<Result> {
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  const { bodies } = prepare(count, offset);
  const events = bodies.map((body) => ({ body, event: JSON.parse(body) as Stripe.Event }));
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < events.length) {
        const { body, event } = events[next++];
        const t0 = performance.now();
        await pool.query(RAW_INSERT, rawInsertValues(event, body));
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = performance.now() - started;
  await pool.end();
  return summarise('raw INSERT … ON CONFLICT (pg, commit each)', concurrency, latencies, elapsed, 0);
}

async function startPeer(url: string) {
  // The package's ESM build reads __dirname to find its migrations and fails; its CommonJS build works.
  const { runMigrations, StripeSync } = createRequire(import.meta.url)(
    '@supabase/stripe-sync-engine',
  ) as typeof import('@supabase/stripe-sync-engine');
  await runMigrations({ databaseUrl: url, schema: 'stripe' });
  const sync = new StripeSync({
    stripeSecretKey: 'sk_test_bench_offline',
    stripeWebhookSecret: SECRET,
    schema: 'stripe',
    backfillRelatedEntities: false,
    autoExpandLists: false,
    poolConfig: { connectionString: url, max: 16 },
  });
  const server = Fastify({ bodyLimit: 1024 * 1024 });
  server.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  server.post('/webhooks', async (request, reply) => {
    try {
      await sync.processWebhook(request.body as Buffer, request.headers['stripe-signature'] as string);
      return { received: true };
    } catch (error) {
      if (process.env.BENCH_DEBUG) console.error(error);
      return reply.status(400).send({ error: 'failed' });
    }
  });
  return listenLocally(server, () => sync.postgresClient.pool.end());
}

async function main() {
  // 64 senders take 64 connections for the raw insert beside the three servers' pools: more than a
  // default server's 100, so unless BENCH_DATABASE_URL names one, the run gets a cluster of its own.
  const cluster = process.env.BENCH_DATABASE_URL ? null : await ownPostgres({ max_connections: '300' });
  const db = cluster
    ? await createScratchDatabase(cluster.url, 'paywire_bench_ingest')
    : await freshDatabase('paywire_bench_ingest');
  const paywire = await startPaywire(db.url);
  const paywireUrl = `http://127.0.0.1:${paywire.port}/webhooks/stripe`;
  const peer = await startPeer(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await pool.query(`CREATE TABLE raw_events (LIKE stripe_events INCLUDING ALL)`);
  await pool.end();
  const tutorial = await startTutorial(db.url);
  const projector = paywire.app.get(BillingProjector);
  // BENCH_PROJECTOR=off measures ingest alone: the projector is stopped as at shutdown and the log grows.
  const projecting = process.env.BENCH_PROJECTOR !== 'off';
  if (!projecting) await projector.onApplicationShutdown();
  const caughtUp = async () => {
    while (projecting && (await projector.lag()).behind > 0)
      await new Promise((resolve) => setTimeout(resolve, 50));
  };

  const results: Result[] = [];
  let offset = 0;
  // Warm-up: JIT, connection pools, the first pages of each table.
  await loadOverHttp('warm-up', paywireUrl, 16, 500, (offset += 10_000_000));
  await loadOverHttp('warm-up', peer.url, 16, 500, (offset += 10_000_000));
  await loadOverHttp('warm-up', tutorial.url, 16, 500, (offset += 10_000_000));
  await caughtUp();
  for (const concurrency of LEVELS) {
    const count = concurrency === 1 ? Math.min(COUNT, 1500) : COUNT;
    results.push(await rawInsert(db.url, concurrency, count, (offset += 10_000_000)));
    results.push(
      await loadOverHttp(
        'tutorial: constructEvent + one INSERT',
        tutorial.url,
        concurrency,
        count,
        (offset += 10_000_000),
      ),
    );
    results.push(
      await loadOverHttp(
        'Paywire POST /webhooks/stripe',
        paywireUrl,
        concurrency,
        count,
        (offset += 10_000_000),
      ),
    );
    // Let the projector catch up so that its work does not weigh on the next measurement.
    await caughtUp();
    results.push(
      await loadOverHttp(
        '@supabase/stripe-sync-engine processWebhook',
        peer.url,
        concurrency,
        count,
        (offset += 10_000_000),
      ),
    );
  }
  await peer.close();
  await tutorial.close();
  await paywire.app.close();
  await db.drop();
  await cluster?.destroy();

  console.log(
    `\nMachine: ${machine()}; PostgreSQL at ${new URL(db.url).host}${cluster ? ' (a cluster of its own, default settings)' : ''}; ${COUNT} events per level (1,500 at 1 sender)\n`,
  );
  console.log(
    table(
      ['senders', 'what', 'events/s', 'p50 ms', 'p99 ms', 'non-200'],
      results.map((r) => [r.concurrency, r.name, r.perSecond, r.p50, r.p99, r.failures]),
    ),
  );
  for (const concurrency of LEVELS) {
    const at = results.filter((r) => r.concurrency === concurrency);
    const raw = at.find((r) => r.name.startsWith('raw'))!;
    const ours = at.find((r) => r.name.startsWith('Paywire'))!;
    const peerResult = at.find((r) => r.name.startsWith('@supabase'))!;
    const tutorialResult = at.find((r) => r.name.startsWith('tutorial'))!;
    console.log(
      `\n${concurrency} senders: Paywire = ${((ours.perSecond / raw.perSecond) * 100).toFixed(0)}% of the raw insert rate, ` +
        `${(ours.perSecond / tutorialResult.perSecond).toFixed(2)}× the tutorial handler (ack p50 ${ours.p50} vs ${tutorialResult.p50} ms), ` +
        `${(ours.perSecond / peerResult.perSecond).toFixed(2)}× the peer`,
    );
  }
}

await main();
