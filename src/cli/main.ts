/**
 * `npx paywire <command>` (SPEC section 7), also `npm run <command>`: `serve`, `migrate`, `replay`.
 * `replay` asks a running Paywire to rebuild (POST /admin/replay) and follows it with a progress bar; when
 * no server answers it rebuilds in this process, against the same database.
 */
import { parseArgs } from 'node:util';
import { createApp } from '../app.js';
import { loadConfig } from '../config/config.js';
import { migrate } from '../database/database.js';
import { exitOnStartupError, serve } from '../main.js';
import { ReplayService } from '../projections/replay.js';
import { MqttTokens } from '../realtime/mqtt-tokens.js';
import { progressReporter } from './progress.js';
import { SCENARIOS, type ScenarioName } from './scenarios.js';
import { simulate } from './simulate.js';

const USAGE = `usage: paywire <command>
  serve                 start the server (same as npm start)
  migrate               apply pending database migrations
  replay [--url URL]    rebuild every projection from the event log, with a progress bar
  token --customer cus_… | --user ID | --admin  [--ttl SECONDS]
                        mint a browser MQTT token with MQTT_TOKEN_SECRET (prints JSON)
  simulate --scenario lifecycle|purchase|dispute|dunning|many [--shuffle] [--duplicates]
           [--customers N] [--delay MS] [--url URL]
                        send signed, realistic Stripe events to a running Paywire, offline
`;

async function migrateCommand(): Promise<void> {
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
  const report = progressReporter();
  process.stdout.write(`replaying on ${url} (job ${jobId})\n`);
  for (;;) {
    const job = (await (await fetch(`${url}/admin/replay/${jobId}`, { headers })).json()) as {
      state: string;
      processed: number;
      total: number;
    };
    report(job.state === 'running' ? Math.min(job.processed, job.total - 1) : job.processed, job.total);
    if (job.state === 'done') return true;
    if (job.state === 'failed') throw new Error('the replay failed; see the server log');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function replayCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { url: { type: 'string' } } });
  const config = loadConfig();
  const url = values.url ?? `http://${config.host}:${config.port}`;
  if (await replayRemote(url, config.adminApiKey)) return;
  process.stdout.write(`no server at ${url}; replaying in this process\n`);
  const { app } = await createApp({ ...config, logLevel: 'warn' });
  await app.init();
  const report = progressReporter();
  const { done } = app.get(ReplayService).start((job) => report(job.processed, job.total));
  const job = await done;
  await app.close();
  if (job.state !== 'done') throw new Error('the replay failed');
}

async function tokenCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      customer: { type: 'string' },
      user: { type: 'string' },
      admin: { type: 'boolean' },
      ttl: { type: 'string' },
    },
  });
  if (!values.customer && !values.user && !values.admin) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const config = loadConfig();
  let minted;
  try {
    minted = await new MqttTokens(config.mqttTokenSecret).mint({
      customerId: values.customer,
      userId: values.user,
      admin: values.admin,
      ttlSeconds: values.ttl === undefined ? undefined : Number(values.ttl),
    });
  } catch (error) {
    process.stderr.write(`paywire token: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const url = `ws://${config.host}:${config.port}${config.mqttWsPath}`;
  process.stdout.write(JSON.stringify({ ...minted, url }, null, 2) + '\n');
}

async function simulateCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: 'string' },
      shuffle: { type: 'boolean' },
      duplicates: { type: 'boolean' },
      customers: { type: 'string' },
      delay: { type: 'string' },
      url: { type: 'string' },
    },
  });
  const scenario = values.scenario as ScenarioName | undefined;
  if (!scenario || !SCENARIOS.includes(scenario)) {
    process.stderr.write(`paywire simulate: --scenario must be one of ${SCENARIOS.join(', ')}\n`);
    process.exit(2);
  }
  const config = loadConfig();
  const base = values.url ?? `http://${config.host}:${config.port}`;
  const tokens = new MqttTokens(config.mqttTokenSecret);
  const delayMs = values.delay ? Number(values.delay) : values.shuffle ? 0 : 400;
  const result = await simulate({
    url: base,
    secret: config.webhookSecrets[0],
    scenario,
    shuffle: values.shuffle,
    duplicates: values.duplicates,
    customers: values.customers ? Number(values.customers) : undefined,
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

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case 'migrate':
      return migrateCommand();
    case 'replay':
      return replayCommand(rest);
    case 'token':
      return tokenCommand(rest);
    case 'simulate':
      return simulateCommand(rest);
    default:
      process.stderr.write(USAGE);
      process.exit(command ? 2 : 0);
  }
}

main(process.argv.slice(2)).catch(exitOnStartupError);
