/**
 * Shared pieces of the benchmarks: a fresh database per run, realistic subscription events (about 4 KB,
 * the size of a real `customer.subscription.updated`), percentiles, and a Markdown table printer.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import pg from 'pg';
import os from 'node:os';
import Stripe from 'stripe';
import { createApp, listen, type PaywireApp } from '../src/app.js';
import { stripeEventEnvelope } from '../src/stripe-api/stripe-event.js';
import { loadConfig } from '../src/config/config.js';
import { createScratchDatabase, type ScratchDatabase } from './scratch-database.js';
import { freePort } from './free-port.js';

export const serverUrl =
  process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function freshDatabase(prefix: string): Promise<ScratchDatabase> {
  return createScratchDatabase(serverUrl, prefix);
}

export function subscriptionEvent(i: number, customers: number, created: number): Stripe.Event {
  const customer = `cus_bench${(i % customers).toString().padStart(7, '0')}`;
  const subscription = `sub_bench${(i % customers).toString().padStart(7, '0')}`;
  const price = {
    id: i % 2 ? 'price_bench_pro' : 'price_bench_basic',
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: 1721948600,
    currency: 'usd',
    livemode: false,
    lookup_key: i % 2 ? 'pro_monthly' : 'basic_monthly',
    metadata: {},
    nickname: null,
    product: 'prod_bench',
    recurring: {
      interval: 'month',
      interval_count: 1,
      meter: null,
      trial_period_days: null,
      usage_type: 'licensed',
    },
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: 'recurring',
    unit_amount: 4000,
    unit_amount_decimal: '4000',
  };
  const object = {
    id: subscription,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: created - 86400,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: created - 86400,
    currency: 'usd',
    customer,
    days_until_due: null,
    default_payment_method: 'pm_1PgcHGB7WZ01zgkWbench000',
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: {
      object: 'list',
      data: [
        {
          id: `si_bench${i}`,
          object: 'subscription_item',
          billing_thresholds: null,
          created: created - 86400,
          current_period_end: created + 2592000,
          current_period_start: created,
          discounts: [],
          metadata: {},
          plan: {
            ...price,
            object: 'plan',
            amount: 4000,
            amount_decimal: '4000',
            interval: 'month',
            interval_count: 1,
            usage_type: 'licensed',
          },
          price,
          quantity: 1,
          subscription,
          tax_rates: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/subscription_items?subscription=${subscription}`,
    },
    latest_invoice: `in_bench${i}`,
    livemode: false,
    metadata: { userId: `user_${i % customers}` },
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: 'off',
    },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: created - 86400,
    status: 'active',
    test_clock: null,
    transfer_data: null,
    trial_end: null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
    trial_start: null,
  };
  return stripeEventEnvelope({
    id: `evt_bench${i.toString().padStart(9, '0')}${randomBytes(3).toString('hex')}`,
    type: 'customer.subscription.updated',
    created,
    object,
    previous: { items: { data: [{ id: `si_bench${i}`, quantity: 2 }] } },
    request: { id: `req_bench${i}`, idempotency_key: randomBytes(16).toString('hex') },
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The middle value, or the mean of the two middle values of an even count. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[Math.floor(middle)];
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export const BENCH_SECRETS = {
  STRIPE_WEBHOOK_SECRET: 'whsec_bench_secret',
  ADMIN_API_KEY: 'bench-admin-key-0123456789',
  MQTT_TOKEN_SECRET: 'bench-mqtt-secret-0123456789abcdef0123456789',
};

/** Paywire on the benchmark's database, listening on a free port, logging nothing. */
export async function startPaywire(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<PaywireApp & { port: number }> {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    DATA_DIR: '/tmp/paywire-bench',
    LOG_LEVEL: 'silent',
    ...BENCH_SECRETS,
    ...env,
  });
  const paywire = await createApp(config);
  return { ...paywire, port: await listen(paywire, 0, '127.0.0.1') };
}

/** A `customer.updated` whose email carries `marker`, so the state it produces can be matched to it. */
export function customerUpdated(customer: string, marker: string, seq: number): string {
  return JSON.stringify(
    stripeEventEnvelope({
      id: `evt_bench_${marker}`,
      type: 'customer.updated',
      created: 1_790_000_000 + seq,
      object: { id: customer, object: 'customer', email: `${marker}@bench.example`, metadata: {} },
    }),
  );
}

/**
 * Posts `body` to Paywire's webhook route on `port`, signed with the benchmarks' secret as Stripe signs;
 * resolves with the answer's status, 0 when there was none.
 */
export function postSignedWebhook(port: number, body: string, agent: http.Agent): Promise<number> {
  const signature = Stripe.webhooks.generateTestHeaderString({
    payload: body,
    secret: BENCH_SECRETS.STRIPE_WEBHOOK_SECRET,
  });
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/webhooks/stripe',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', () => resolve(0));
    request.end(body);
  });
}

/**
 * Writes `count` customers' projected states straight into `billing_customers` (ids `${prefix}000000`…,
 * each with an email of that id), as if the projector had folded them: for benchmarks that need many
 * stored states without folding events first. The database must be migrated (an instance started once).
 */
export async function seedCustomerStates(databaseUrl: string, prefix: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO billing_customers (customer_id, user_id, email, deleted, state, view, version)
       SELECT id, NULL, id || '@bench.example', false, jsonb_build_object('customerId', id),
              jsonb_build_object('customerId', id, 'userId', NULL, 'email', id || '@bench.example', 'deleted', false,
                'entitlements', jsonb_build_array(jsonb_build_object('feature', 'pro', 'source', 'subscription',
                  'sourceId', 'sub_' || id, 'until', '2027-01-01T00:00:00Z')),
                'subscriptions', jsonb_build_array(jsonb_build_object('id', 'sub_' || id, 'status', 'active',
                  'items', jsonb_build_array(jsonb_build_object('priceId', 'price_pro', 'productId', 'prod_pro',
                    'lookupKey', 'pro_monthly', 'quantity', 1)),
                  'currentPeriodEnd', '2027-01-01T00:00:00Z', 'cancelAtPeriodEnd', false, 'trialEnd', NULL)),
                'payment', jsonb_build_object('status', 'ok', 'lastInvoiceId', NULL, 'lastError', NULL),
                'purchases', '[]'::jsonb, 'version', n, 'asOf', '2026-11-20T10:00:00Z'),
              n
         FROM generate_series(1, $2::int) AS n, LATERAL (SELECT $1 || lpad(n::text, 7, '0') AS id) AS ids
       ON CONFLICT (customer_id) DO NOTHING`,
      [prefix, count],
    );
    await client.query('ANALYZE billing_customers');
  } finally {
    await client.end();
  }
}

/**
 * Resolves once the projector has folded every event of the log `db` reads; `marker` prefixes the query
 * (a comment that keeps it out of a statement table).
 */
export async function projectionCaughtUp(db: pg.ClientBase, marker = ''): Promise<void> {
  for (;;) {
    const { rows } = await db.query<{ behind: boolean }>(
      `${marker} SELECT EXISTS (SELECT 1 FROM stripe_events WHERE position >
         COALESCE((SELECT max(position) FROM projector_checkpoints), 0)) AS behind`,
    );
    if (!rows[0].behind) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface PaywireProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Resident memory of the server process now, from /proc (MiB). */
  rssMiB(): number;
  stop(): Promise<void>;
}

/**
 * The built server (`dist/src/main.js`) in a process of its own on a free port, resolved once
 * `/health/ready` answers 200, so that its memory and event loop are measured apart from the load's.
 */
export async function spawnPaywire(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<PaywireProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      ...BENCH_SECRETS,
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: 'ignore',
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error('the server exited before it was ready');
    try {
      if ((await fetch(`${url}/health/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url,
    port,
    child,
    rssMiB: () => {
      const line = readFileSync(`/proc/${child.pid}/status`, 'utf8')
        .split('\n')
        .find((entry) => entry.startsWith('VmRSS:'));
      return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
    },
    stop: async () => {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
