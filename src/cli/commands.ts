/**
 * What each `paywire` command does, loaded only when one runs, so that `--help` and a bad option answer
 * without loading Nest, the database drivers and the broker. `replay` asks a running Paywire to rebuild
 * (POST /admin/replay) and follows it with a progress bar; when no server answers it rebuilds in this
 * process, against the same database.
 */
import type { Command } from 'commander';
import { createApp } from '../app.js';
import { loadConfig, type Config } from '../config/config.js';
import { migrate } from '../database/database.js';
import { ReplayService } from '../projections/replay.js';
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

async function replayRemote(url: string, adminKey: string): Promise<boolean> {
  try {
    await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(1000) });
  } catch {
    return false;
  }
  const headers = { authorization: `Bearer ${adminKey}` };
  const started = await fetch(`${url}/admin/replay`, { method: 'POST', headers });
  if (started.status !== 202) throw new Error(`the server answered ${started.status} to POST /admin/replay`);
  const { jobId } = (await started.json()) as { jobId: string };
  process.stdout.write(`replaying on ${url} (job ${jobId})\n`);
  const bar = progressBar('events');
  try {
    for (;;) {
      const job = (await (await fetch(`${url}/admin/replay/${jobId}`, { headers })).json()) as {
        state: string;
        processed: number;
        total: number;
      };
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
  if (await replayRemote(url, config.adminApiKey)) return;
  process.stdout.write(`no server at ${url}; replaying in this process\n`);
  const { app } = await createApp({ ...config, logLevel: 'warn' });
  await app.init();
  const bar = progressBar('events');
  const { done } = app.get(ReplayService).start((job) => bar.update(job.processed, job.total));
  const job = await done;
  bar.stop();
  await app.close();
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
