/**
 * PostgreSQL crashes and comes back under load (issue 14): two Paywire instances run on a cluster of the
 * test's own, webhooks keep arriving at both, and the cluster is stopped at once (`-m immediate`, as a
 * crash) for three seconds, then started again (it recovers from its WAL). While it is down the instances
 * answer 503 and report not ready; nothing is answered 200 that was not stored; what was refused is sent
 * again, as Stripe does. Afterwards every acknowledged event is in the log once, both instances serve the
 * pure fold of the log, and the subscribers on both instances hold each customer's final state: the
 * projector's lease, the change feed's LISTEN session and the pools all came back on their own. The
 * cut-proxy variant of the outage is database-outage.spec.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import type Stripe from 'stripe';
import type { BillingState } from '../src/billing/billing-state.js';
import { openDatabase, type Sql } from '../src/database/database.js';
import { WEBHOOK_SECRET } from './support/app.js';
import { foldedState } from './support/folded-state.js';
import { pendingEvents, readiness, settled, stateOn } from './support/instance.js';
import { closeMqttClients, connectMqtt, mintToken, subscribe } from './support/mqtt.js';
import { ownPostgres, ownPostgresAvailable, type OwnPostgres } from '../bench/own-postgres.js';
import { serverProcess, type ServerProcess } from './support/server-process.js';
import { sendEvent, stripeEvent, uid } from './support/stripe.js';
import { poll } from './support/until.js';

const describeWithPostgres = ownPostgresAvailable ? describe : describe.skip;
const CUSTOMERS = 10;
const SENDERS = 8;
const DOWN_MS = 3000;

interface Answer {
  eventId: string;
  status: number | 'no answer';
  sentAt: number;
  answeredAt: number;
}

describeWithPostgres('PostgreSQL crashes and restarts under load', () => {
  let cluster: OwnPostgres;
  let dataDir: string;
  let servers: ServerProcess[];
  let sql: Sql;

  beforeAll(async () => {
    cluster = await ownPostgres();
    dataDir = mkdtempSync(join(tmpdir(), 'paywire-restart-'));
    const db = { url: cluster.url, dataDir, kind: 'postgres' as const, drop: async () => undefined };
    servers = await Promise.all(['a', 'b'].map((name) => serverProcess(db, { INSTANCE_ID: `pw-${name}` })));
    for (const server of servers) await server.start();
    sql = await openDatabase({ url: cluster.url, dataDir }, 2);
  }, 120_000);

  afterAll(async () => {
    closeMqttClients();
    await Promise.all((servers ?? []).map((server) => server.kill()));
    await sql?.close().catch(() => undefined);
    await cluster?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 503 while it is down, stores everything acknowledged, and projects and pushes it all after', async () => {
    const customers = Array.from({ length: CUSTOMERS }, () => uid('cus'));
    // Every customer watched on both instances; the latest state each subscriber got, by customer.
    const received = servers.map(() => new Map<string, BillingState>());
    const subscribers: MqttClient[] = [];
    for (const [s, server] of servers.entries())
      for (const customer of customers) {
        const grant = await mintToken(server.url, { customerId: customer });
        const client = await connectMqtt(
          `${server.url.replace('http', 'ws')}/mqtt`,
          grant.token,
          grant.clientId,
        );
        client.on('message', (_topic, payload) =>
          received[s].set(customer, JSON.parse(payload.toString()) as BillingState),
        );
        await subscribe(client, `billing/customers/${customer}/state`);
        subscribers.push(client);
      }

    const answers: Answer[] = [];
    const refused: Stripe.Event[] = [];
    const acknowledged: string[] = [];
    let seq = 0;
    let loading = true;
    const post = async (event: Stripe.Event, server: ServerProcess) => {
      const sentAt = Date.now();
      const answer = await sendEvent(server.url, event, WEBHOOK_SECRET).catch(() => null);
      answers.push({
        eventId: event.id,
        status: answer?.status ?? 'no answer',
        sentAt,
        answeredAt: Date.now(),
      });
      if (answer?.status === 200) acknowledged.push(event.id);
      else refused.push(event);
      return answer?.status === 200;
    };
    const load = Promise.all(
      Array.from({ length: SENDERS }, async (_, sender) => {
        while (loading) {
          const n = seq++;
          const customer = customers[n % CUSTOMERS];
          const event = stripeEvent(
            'customer.updated',
            { id: customer, object: 'customer', email: `${customer}.${n}@example.com` },
            { created: 1_790_000_000 + n },
          );
          const ok = await post(event, servers[(n + sender) % servers.length]);
          // A refused sender backs off a little, as Stripe's do (theirs by hours).
          await new Promise((resolve) => setTimeout(resolve, ok ? 5 : 100));
        }
      }),
    );

    await new Promise((resolve) => setTimeout(resolve, 1500));
    await cluster.crash();
    const downFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, DOWN_MS / 2));
    const readyWhileDown = await Promise.all(servers.map((server) => fetch(`${server.url}/health/ready`)));
    await new Promise((resolve) => setTimeout(resolve, DOWN_MS / 2));
    const downUntil = Date.now();
    await cluster.start();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    loading = false;
    await load;

    expect(readyWhileDown.map((response) => response.status)).toEqual([503, 503]);
    // Every request was answered (the instances stayed up), and only with 200 or 503.
    expect(answers.filter((answer) => answer.status !== 200 && answer.status !== 503)).toEqual([]);
    // Nothing sent and answered entirely while the database was down was acknowledged.
    const whileDown = answers.filter((answer) => answer.sentAt >= downFrom && answer.answeredAt <= downUntil);
    expect(whileDown.length).toBeGreaterThan(0);
    expect(whileDown.filter((answer) => answer.status === 200)).toEqual([]);
    // Requests were acknowledged after the restart, without the instances being restarted.
    expect(answers.some((answer) => answer.status === 200 && answer.sentAt > downUntil)).toBe(true);

    // What was refused is delivered again, to either instance, as Stripe retries.
    const retries = await Promise.all(
      refused.map((event, i) => sendEvent(servers[i % 2].url, event, WEBHOOK_SECRET)),
    );
    expect(retries.filter((answer) => answer.status !== 200)).toEqual([]);
    acknowledged.push(...refused.map((event) => event.id));

    await Promise.all(servers.map((server) => settled(server.url, 30_000)));
    const stored = await sql.query<{ id: string }>(
      `SELECT id FROM stripe_events WHERE id = ANY($1::text[])`,
      [acknowledged],
    );
    expect(stored).toHaveLength(new Set(acknowledged).size);
    const [{ count }] = await sql.query<{ count: string }>(`SELECT count(*) FROM stripe_events`);
    expect(Number(count)).toBe(seq);
    expect(await pendingEvents(sql)).toEqual([]);
    const states = await Promise.all(servers.map((server) => readiness(server.url)));
    expect(states.filter((state) => state.projector.projecting)).toHaveLength(1);

    for (const customer of customers) {
      const expected = await foldedState(sql, customer);
      expect(expected?.email).toMatch(/@example\.com$/);
      for (const [s, server] of servers.entries()) {
        expect(await stateOn(server.url, customer)).toEqual(expected);
        await poll(
          async () => received[s].get(customer),
          (state) => state?.version === expected!.version,
          10_000,
        );
        expect(received[s].get(customer)).toEqual(expected);
      }
    }
    for (const client of subscribers) expect(client.connected).toBe(true);
  }, 120_000);
});
