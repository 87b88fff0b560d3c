/**
 * What each `paywire` command does, loaded only when one runs, so that `--help` and a bad option answer
 * without loading Nest, the database drivers and the broker. `replay`, `backfill` and `reconcile` ask a
 * running Paywire (its admin API) and follow the job with a progress bar; when no server answers they run
 * in this process, against the same database (an embedded one can be open in one process only).
 */
import type { Command } from 'commander';
import { createApp } from '../app.js';
import { loadConfig, type Config } from '../config/config.js';
import { migrate } from '../database/database.js';
import { ReplayService } from '../projections/replay.js';
import { ReconcileService, type ReconcileReport } from '../completeness/reconcile.service.js';
import { EVENT_RETENTION_SECONDS, StripeSync } from '../completeness/stripe-sync.js';
import { backfillStatus, type BackfillStatus, type SyncJob } from '../completeness/sync-jobs.js';
import { MqttTokens } from '../realtime/mqtt-tokens.js';
import { progressBar } from './progress.js';
import type { ScenarioName } from './scenarios.js';
import { simulate } from './simulate.js';
import { USAGE_ERROR } from './usage.js';

export { serve } from '../main.js';

/** The Paywire this machine's configuration describes, for commands that talk to a running one. */
const localUrl = (config: Config) => `http://${config.host}:${config.port}`;

export async function migrateCommand(): Promise<void> {
  const config = loadConfig();
  const applied = await migrate({ url: config.databaseUrl, dataDir: config.dataDir });
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

/** Calls a running Paywire's admin API; throws with the server's message unless it answers `expected`. */
async function adminRequest<T>(
  config: Config,
  url: string,
  request: { method?: 'GET' | 'POST'; path: string; body?: unknown; expected?: number },
): Promise<T> {
  const response = await fetch(`${url}${request.path}`, {
    method: request.method ?? 'GET',
    headers: { authorization: `Bearer ${config.adminApiKey}`, 'content-type': 'application/json' },
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  });
  const body = (await response.json()) as T & { error?: string; message?: string };
  if (response.status !== (request.expected ?? 200)) {
    throw new Error(
      `the server answered ${response.status} to ${request.method ?? 'GET'} ${request.path}: ${body.message ?? body.error ?? ''}`,
    );
  }
  return body;
}

/** Runs `work` against an application built in this process, closed afterwards. */
async function inProcess<T>(
  config: Config,
  work: (app: Awaited<ReturnType<typeof createApp>>['app']) => Promise<T>,
): Promise<T> {
  const { app } = await createApp({ ...config, logLevel: 'warn', gapHealIntervalSeconds: 0 });
  await app.init();
  try {
    return await work(app);
  } finally {
    await app.close();
  }
}

async function replayRemote(config: Config, url: string): Promise<boolean> {
  if (!(await answers(url))) return false;
  const { jobId } = await adminRequest<{ jobId: string }>(config, url, {
    method: 'POST',
    path: '/admin/replay',
    expected: 202,
  });
  process.stdout.write(`replaying on ${url} (job ${jobId})\n`);
  const bar = progressBar('events');
  try {
    for (;;) {
      const job = await adminRequest<{ state: string; processed: number; total: number }>(config, url, {
        path: `/admin/replay/${jobId}`,
      });
      bar.update(job.state === 'running' ? Math.min(job.processed, job.total - 1) : job.processed, job.total);
      if (job.state === 'done') return true;
      if (job.state === 'failed') throw new Error('the replay failed; see the server log');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    bar.stop();
  }
}

export async function replayCommand(options: { url?: string }): Promise<void> {
  const config = loadConfig();
  const url = options.url ?? localUrl(config);
  if (await replayRemote(config, url)) return;
  process.stdout.write(`no server at ${url}; replaying in this process\n`);
  const job = await inProcess(config, async (app) => {
    const bar = progressBar('events');
    try {
      const { done } = await app
        .get(ReplayService)
        .start((current) => bar.update(current.processed, current.total));
      return await done;
    } finally {
      bar.stop();
    }
  });
  if (job.state !== 'done') throw new Error('the replay failed');
}

export async function tokenCommand(
  options: { customer?: string; user?: string; admin?: boolean; ttl?: number },
  command: Command,
): Promise<void> {
  if (!options.customer && !options.user && !options.admin) {
    command.error('error: one of --customer, --user or --admin is required', { exitCode: USAGE_ERROR });
  }
  const config = loadConfig();
  let minted;
  try {
    minted = await new MqttTokens(config.mqttTokenSecret).mint({
      customerId: options.customer,
      userId: options.user,
      admin: options.admin,
      ttlSeconds: options.ttl,
    });
  } catch (error) {
    command.error(`error: ${(error as Error).message}`, { exitCode: USAGE_ERROR });
  }
  const url = `ws://${config.host}:${config.port}${config.mqttWsPath}`;
  process.stdout.write(JSON.stringify({ ...minted, url }, null, 2) + '\n');
}

export async function simulateCommand(options: {
  scenario: ScenarioName;
  shuffle?: boolean;
  duplicates?: boolean;
  customers?: number;
  delay?: number;
  url?: string;
}): Promise<void> {
  const config = loadConfig();
  const base = options.url ?? localUrl(config);
  const tokens = new MqttTokens(config.mqttTokenSecret);
  const delayMs = options.delay ?? (options.shuffle ? 0 : 400);
  const result = await simulate({
    url: base,
    secret: config.webhookSecrets[0],
    scenario: options.scenario,
    shuffle: options.shuffle,
    duplicates: options.duplicates,
    customers: options.customers,
    delayMs,
    log: (line) => process.stdout.write(`${line}\n`),
    onStart: async ([first]) => {
      const { token } = await tokens.mint({ customerId: first, ttlSeconds: 3600 });
      process.stdout.write(`watch it live: ${base}/demo?customer=${first}#token=${token}\n\n`);
      // In order and paced, give a person a moment to open the page before the first event.
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, 3000));
    },
  });
  process.stdout.write(
    `\nsent ${result.sent} deliveries of ${result.distinct} events: ${JSON.stringify(result.answers)}\n` +
      `customers: ${result.customers.slice(0, 5).join(', ')}${result.customers.length > 5 ? ', …' : ''}\n` +
      `state: curl -H "Authorization: Bearer $ADMIN_API_KEY" ${base}/admin/customers/${result.customers[0]}\n`,
  );
}

/** Follows a backfill with a bar over the stretch of time it covers; resolves with its last status. */
async function followBackfill(since: number, read: () => Promise<BackfillStatus>): Promise<BackfillStatus> {
  const bar = progressBar('seconds of history');
  try {
    for (;;) {
      const job = await read();
      const span = Math.max(1, Math.floor(Date.now() / 1000) - since);
      const covered = Math.floor(Date.parse(job.cursor) / 1000) - since;
      bar.update(job.state === 'done' ? span : Math.min(covered, span - 1), span);
      if (job.state !== 'running') return job;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    bar.stop();
  }
}

function reportBackfill(job: BackfillStatus): void {
  process.stdout.write(
    `fetched ${job.fetched} events: ${job.stored} stored, ${job.duplicates} already in the log\n`,
  );
  if (job.state === 'failed') throw new Error(`the backfill failed: ${job.error ?? 'see the server log'}`);
}

export async function backfillCommand(options: { since?: number; url?: string }): Promise<void> {
  const config = loadConfig();
  const since = options.since ?? Math.floor(Date.now() / 1000) - EVENT_RETENTION_SECONDS;
  const url = options.url ?? localUrl(config);
  if (await answers(url)) {
    const { jobId } = await adminRequest<{ jobId: string }>(config, url, {
      method: 'POST',
      path: '/admin/backfill',
      body: { since },
      expected: 202,
    });
    process.stdout.write(`backfilling on ${url} (job ${jobId})\n`);
    const read = () => adminRequest<BackfillStatus>(config, url, { path: `/admin/backfill/${jobId}` });
    return reportBackfill(await followBackfill(since, read));
  }
  if (!config.stripeSecretKey) throw new Error("STRIPE_SECRET_KEY is not set: backfill needs Stripe's API");
  process.stdout.write(`no server at ${url}; backfilling in this process\n`);
  await inProcess(config, async (app) => {
    const sync = app.get(StripeSync);
    const follow = (job: SyncJob) =>
      followBackfill(job.since, async () => backfillStatus((await sync.job(job.id))!));
    // A backfill this command ran before and that was killed continues from its cursor instead.
    const resumed = await sync.resumedAtStart;
    for (const job of resumed) {
      process.stdout.write(`resuming job ${job.id} from ${new Date(job.cursor * 1000).toISOString()}\n`);
      reportBackfill(await follow(job));
    }
    if (resumed.length === 0) reportBackfill(await follow(await sync.startBackfill(since)));
  });
}

export async function reconcileCommand(options: {
  customer?: string;
  repair?: boolean;
  url?: string;
}): Promise<void> {
  const config = loadConfig();
  const url = options.url ?? localUrl(config);
  const request = { customerId: options.customer, repair: options.repair === true };
  let report: ReconcileReport;
  if (await answers(url)) {
    report = await adminRequest<ReconcileReport>(config, url, {
      method: 'POST',
      path: '/admin/reconcile',
      body: request,
    });
  } else {
    if (!config.stripeSecretKey)
      throw new Error("STRIPE_SECRET_KEY is not set: reconcile needs Stripe's API");
    report = await inProcess(config, (app) => app.get(ReconcileService).reconcile(request));
  }
  for (const drift of report.drifted) {
    process.stdout.write(
      `${drift.customerId}  ${drift.path}  paywire=${JSON.stringify(drift.paywire)}  stripe=${JSON.stringify(drift.stripe)}\n`,
    );
  }
  process.stdout.write(
    `checked ${report.checked} customer${report.checked === 1 ? '' : 's'}: ${report.drifted.length} difference${report.drifted.length === 1 ? '' : 's'}` +
      (request.repair ? `, ${report.repaired} repaired\n` : '\n'),
  );
}

export async function fakeStripeCommand(options: {
  port: number;
  host: string;
  webhookUrl?: string;
  webhookSecret?: string;
  dropWebhooks?: boolean;
  delayWebhooks: number;
}): Promise<void> {
  const config = loadConfig();
  // Loaded here only, so that no other command (serve above all) loads the development stand-in.
  const { FakeStripe } = await import('../fake-stripe/fake-stripe.js');
  const fake = await new FakeStripe({
    port: options.port,
    host: options.host,
    webhookUrl: options.webhookUrl ?? `${localUrl(config)}/webhooks/stripe`,
    webhookSecret: options.webhookSecret ?? config.webhookSecrets[0],
  }).start();
  fake.configureWebhooks({ mode: options.dropWebhooks ? 'drop' : 'deliver', delayMs: options.delayWebhooks });
  const [product] = fake.products;
  process.stdout.write(
    `fake Stripe at ${fake.url} (not Stripe: a development stand-in)\n` +
      `  webhooks: ${fake.webhookMode === 'drop' ? 'dropped' : `to ${fake.webhookUrl}`}${fake.webhookDelayMs ? `, ${fake.webhookDelayMs} ms late` : ''}\n` +
      `  for Paywire:      STRIPE_API_URL=${fake.url} STRIPE_SECRET_KEY=sk_test_fake GAP_HEAL_INTERVAL_SECONDS=10\n` +
      `  for the example:  STRIPE_API_URL=${fake.url} STRIPE_SECRET_KEY=sk_test_fake STRIPE_PRICE_ID=${product.priceId}\n` +
      `  drive it:         curl -X POST ${fake.url}/_fake/subscriptions/sub_…/renew  (also fail_payment, cancel)\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await fake.close();
}
