/**
 * The webhook handler every Stripe tutorial shows, the baseline issue 15 measures Paywire against:
 * Fastify, `stripe.webhooks.constructEvent` on the raw body, one `INSERT … ON CONFLICT DO NOTHING` into a
 * copy of the log's table (`raw_events`, made by the caller), answer 200. In the benchmark's process, or,
 * run as `node dist/bench/tutorial-server.js` with DATABASE_URL set, as a process of its own whose CPU
 * time can be read apart (it prints its port).
 */
import Fastify from 'fastify';
import pg from 'pg';
import Stripe from 'stripe';
import { BENCH_SECRETS } from './support.js';

export const RAW_INSERT = `INSERT INTO raw_events (id, type, created, livemode, api_version, customer_id, object_id, payload)
  VALUES ($1, $2, to_timestamp($3), $4, $5, $6, $7, $8::jsonb) ON CONFLICT (id) DO NOTHING`;

export const rawInsertValues = (event: Stripe.Event, body: string) => [
  event.id,
  event.type,
  event.created,
  event.livemode,
  event.api_version,
  'cus_x',
  'sub_x',
  body,
];

export async function listenLocally(server: ReturnType<typeof Fastify>, closeDatabase: () => Promise<void>) {
  await server.listen({ port: 0, host: '127.0.0.1' });
  const address = server.server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/webhooks`,
    close: async () => {
      await server.close();
      await closeDatabase();
    },
  };
}

export async function startTutorial(databaseUrl: string) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 64 });
  const stripe = new Stripe('sk_test_bench_offline');
  const server = Fastify({ bodyLimit: 1024 * 1024 });
  server.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  server.post('/webhooks', async (request, reply) => {
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(
        request.body as Buffer,
        request.headers['stripe-signature'] as string,
        BENCH_SECRETS.STRIPE_WEBHOOK_SECRET,
      );
    } catch {
      return reply.status(400).send({ error: 'bad signature' });
    }
    await pool.query(RAW_INSERT, rawInsertValues(event, (request.body as Buffer).toString()));
    return { received: true };
  });
  return listenLocally(server, () => pool.end());
}

if (process.argv[1]?.endsWith('tutorial-server.js')) {
  const tutorial = await startTutorial(process.env.DATABASE_URL!);
  console.log(JSON.stringify({ url: tutorial.url }));
  process.once('SIGTERM', () => void tutorial.close().then(() => process.exit(0)));
}
