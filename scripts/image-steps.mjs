#!/usr/bin/env node
/**
 * Performs the Dockerfile's own steps without a Docker daemon (CI has none), so the image cannot rot
 * unseen: each stage is a folder, COPY copies from the build context or an earlier stage, RUN runs in the
 * stage's WORKDIR with its ENV, and the final stage's CMD is started as an unprivileged user against a
 * fresh PostgreSQL database, with the image's HEALTHCHECK as the readiness probe. Then a signed webhook is
 * stored, and SIGTERM stops the server within the time Docker gives it.
 *
 * What it cannot check is the base image itself: it runs on this machine's Node, and refuses to run when
 * that is not the version the Dockerfile's FROM names.
 *
 * Usage: node scripts/image-steps.mjs   (database server: TEST_DATABASE_URL, else the local one)
 */
import { execSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import pg from 'pg';
import Stripe from 'stripe';

const context = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NOBODY = 65534;
const ignored = new Set(
  readFileSync(join(context, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#')),
);

function fail(message) {
  throw new Error(message);
}

/** The Dockerfile as instructions: continuation lines joined, comments dropped. */
function instructions(text) {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: line.slice(keyword.length).trim(), words: rest };
    });
}

function parseEnv(args) {
  return Object.fromEntries(
    [...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map(([, k, v]) => [k, v.replace(/^"|"$/g, '')]),
  );
}

/** .dockerignore's patterns as Docker reads them: paths from the context's root, `*` within one name. */
function dockerIgnored(path) {
  const relativePath = relative(context, path);
  return [...ignored].some((pattern) =>
    new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`).test(
      relativePath,
    ),
  );
}

const root = mkdtempSync(join(tmpdir(), 'paywire-image-'));
chmodSync(root, 0o755);
const stages = [];
let stage;
const inStage = (s, path) => join(s.dir, path.startsWith('/') ? path : join(s.workdir, path));

async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** Builds the stages, then runs the image; returns the final stage. */
async function main() {
  for (const { keyword, args, words } of instructions(readFileSync(join(context, 'Dockerfile'), 'utf8'))) {
    process.stdout.write(`\n== ${keyword} ${args}\n`);
    switch (keyword) {
      case 'FROM': {
        const nodeVersion = /^node:(\d+\.\d+\.\d+)/.exec(words[0])?.[1];
        if (!nodeVersion) fail(`FROM ${words[0]}: only node:X.Y.Z images are understood`);
        if (process.version !== `v${nodeVersion}`)
          fail(
            `the Dockerfile builds on Node ${nodeVersion}, this machine runs ${process.version} (.nvmrc?)`,
          );
        stage = {
          name: words[2] ?? String(stages.length),
          dir: join(root, `stage-${stages.length}`),
          workdir: '/',
          env: {},
        };
        mkdirSync(stage.dir);
        stages.push(stage);
        break;
      }
      case 'WORKDIR':
        stage.workdir = args;
        mkdirSync(inStage(stage, '.'), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage.env, parseEnv(args));
        break;
      case 'COPY': {
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = paths.pop();
        const source = from ? stages.find((s) => s.name === from) : undefined;
        if (from && !source) fail(`COPY --from=${from}: no such stage`);
        for (const path of paths) {
          const src = source ? join(source.dir, path) : join(context, path);
          if (!existsSync(src)) fail(`COPY ${path}: not found`);
          const target = dest.endsWith('/')
            ? join(inStage(stage, dest), basename(path))
            : inStage(stage, dest);
          cpSync(src, target, { recursive: true, filter: (p) => source !== undefined || !dockerIgnored(p) });
        }
        break;
      }
      case 'RUN':
        execSync(args, {
          cwd: inStage(stage, '.'),
          env: { ...process.env, ...stage.env },
          stdio: 'inherit',
          shell: '/bin/sh',
        });
        break;
      case 'USER':
        stage.user = args;
        break;
      case 'HEALTHCHECK':
        stage.healthcheck = JSON.parse(args.slice(args.indexOf('CMD') + 3).trim());
        break;
      case 'CMD':
        stage.cmd = JSON.parse(args);
        break;
      case 'EXPOSE':
        break;
      default:
        fail(`${keyword}: not an instruction this script performs; teach it, or keep the Dockerfile simple`);
    }
  }

  const image = stages.at(-1);
  if (!image.cmd || !image.healthcheck || !image.user || image.user === 'root')
    fail('the final stage needs CMD, HEALTHCHECK and a USER other than root');
  const app = inStage(image, '.');
  // (TypeScript itself is a production dependency of @nestjs/swagger.)
  for (const devOnly of ['jest', 'ts-jest', 'eslint', 'prettier', 'playwright-core']) {
    if (existsSync(join(app, 'node_modules', devOnly)))
      fail(`${devOnly} is in the image: dev dependencies leaked`);
  }
  const serverUrl = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
  const database = `paywire_image_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${database}` }).toString();
  const port = await freePort();
  const webhookSecret = 'whsec_image_steps_0123456789';
  // As the base image would: its own node on the PATH, and a home the unprivileged user can write.
  const base = join(root, 'base');
  mkdirSync(join(base, 'bin'), { recursive: true });
  cpSync(process.execPath, join(base, 'bin', 'node'));
  mkdirSync(join(base, 'data'));
  if (process.getuid?.() === 0) chownSync(join(base, 'data'), NOBODY, NOBODY);
  const env = {
    PATH: `${join(base, 'bin')}:/usr/bin:/bin`,
    ...image.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: join(base, 'data'),
    DATABASE_URL: databaseUrl,
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    ADMIN_API_KEY: 'image-steps-admin-key-0123456789',
    MQTT_TOKEN_SECRET: 'image-steps-mqtt-token-secret-0123456789abcdef',
  };
  const asUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {};
  process.stdout.write(
    `\n== starting ${image.cmd.join(' ')} as ${asUser.uid ?? 'this user'} on port ${port}\n`,
  );
  const resolveCommand = ([program, ...rest]) => [
    program === 'node' ? join(base, 'bin', 'node') : program,
    rest,
  ];
  const [program, programArgs] = resolveCommand(image.cmd);
  const [probe, probeArgs] = resolveCommand(image.healthcheck);
  const server = spawn(program, programArgs, { cwd: app, env, stdio: 'inherit', ...asUser });
  let exited = false;
  server.once('exit', () => (exited = true));

  try {
    let healthy = false;
    for (let i = 0; i < 120 && !healthy && !exited; i++) {
      await new Promise((done) => setTimeout(done, 500));
      healthy = spawnSync(probe, probeArgs, { cwd: app, env, ...asUser }).status === 0;
    }
    if (!healthy) fail('the HEALTHCHECK never passed');
    process.stdout.write('== HEALTHCHECK passes\n');

    const body = JSON.stringify({
      id: `evt_image_${process.pid}`,
      object: 'event',
      type: 'customer.created',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      api_version: '2026-07-29.dahlia',
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: { id: 'cus_image', object: 'customer', email: 'image@example.com' } },
    });
    const signature = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: webhookSecret });
    const answer = await fetch(`http://127.0.0.1:${port}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      body,
    });
    if (answer.status !== 200) fail(`a signed webhook got ${answer.status}`);
    process.stdout.write('== a signed webhook is stored (200)\n');

    // A browser stays connected through the stop, as browsers do.
    const minted = await fetch(`http://127.0.0.1:${port}/admin/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.ADMIN_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'cus_image' }),
    }).then((r) => r.json());
    const browser = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, {
      protocolVersion: 4,
      clientId: minted.clientId,
      username: 'browser',
      password: minted.token,
      reconnectPeriod: 0,
    });
    await browser.subscribeAsync('billing/customers/cus_image/state', { qos: 1 });
    process.stdout.write('== a browser is connected over MQTT\n');

    // Docker sends SIGTERM, then SIGKILL after 10 s.
    const stopped = new Promise((done) => (exited ? done() : server.once('exit', done)));
    server.kill('SIGTERM');
    const inTime = await Promise.race([
      stopped.then(() => true),
      new Promise((done) => setTimeout(() => done(false), 10_000)),
    ]);
    if (!inTime) fail('SIGTERM did not stop the server within 10 s (with a browser connected)');
    process.stdout.write('== SIGTERM stops it\n\nimage steps: ok\n');
  } finally {
    if (!exited) server.kill('SIGKILL');
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
}

try {
  await main();
} catch (error) {
  process.stderr.write(`image-steps: ${error.message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(root, { recursive: true, force: true });
}
