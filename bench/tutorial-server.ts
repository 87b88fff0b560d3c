/**
 * The webhook handler every Stripe tutorial shows, the baseline issue 15 measures Paywire against:
 * Fastify, `stripe.webhooks.constructEvent` on the raw body, one `INSERT … ON CONFLICT DO NOTHING` into a
 * copy of the log's table (`raw_events`, made by the caller), answer 200. In the benchmark's process, or,
 * run as `node dist/bench/tutorial-server.js` with DATABASE_URL set, as a process of its own whose CPU
 * time can be read apart (it prints its port). With `--signature-only` it stores nothing: the same check
 * and answer alone, the least any webhook handler that verifies signatures costs (`bench:budget`).
 */
import { spawn } from 'node:child_process';
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

/** The tutorial's handler; with `store: false`, without its INSERT (and without a database). */
export async function startTutorial(databaseUrl: string, options: { store?: boolean } = {}) {
  const pool = options.store === false ? null : new pg.Pool({ connectionString: databaseUrl, max: 64 });
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
    await pool?.query(RAW_INSERT, rawInsertValues(event, (request.body as Buffer).toString()));
    return { received: true };
  });
  return listenLocally(server, async () => pool?.end());
}

/**
 * The handler in a process of its own (`signatureOnly`: storing nothing), resolved with its URL once it
 * listens; `nodeArgs` go to Node (say, `--inspect`).
 */
export async function spawnTutorial(
  databaseUrl: string,
  options: { signatureOnly?: boolean; nodeArgs?: string[] } = {},
) {
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      'dist/bench/tutorial-server.js',
      ...(options.signatureOnly ? ['--signature-only'] : []),
    ],
    { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (data) => resolve(String(data)));
    child.once('exit', (code) => reject(new Error(`the tutorial server exited (${code}) before listening`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

if (process.argv[1]?.endsWith('tutorial-server.js')) {
  const tutorial = await startTutorial(process.env.DATABASE_URL ?? '', {
    store: !process.argv.includes('--signature-only'),
  });
  console.log(JSON.stringify({ url: tutorial.url }));
  process.once('SIGTERM', () => void tutorial.close().then(() => process.exit(0)));
}
