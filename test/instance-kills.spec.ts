/**
 * Twenty SIGKILLs of random instances at random moments under load (issue 14): three server processes on
 * one database take customers' lifecycles, each event sent to a random live instance and, when the answer
 * is not 200 (the instance died under it), sent again to another, as Stripe retries. In each of 20 rounds
 * one instance chosen at random, the projecting one or not, is killed after a random share of the round's
 * events were acknowledged. After each round: every acknowledged event is in the log once, nothing is
 * pending, every customer's live state equals the pure fold of its events, a replay gives the same states,
 * and the killed instance is started again. PGlite is one process's database, so this needs a server.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { openDatabase, type Sql } from '../src/database/database.js';
import { WEBHOOK_SECRET } from './support/app.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';
import { foldedState } from './support/folded-state.js';
import { pendingEvents, readiness, replayToEnd, settled, stateOn } from './support/instance.js';
import { serverProcess, type ServerProcess } from './support/server-process.js';
import { sendEvent, stripeEvent, subscriptionEvent, uid } from './support/stripe.js';

const describeWithServer = serverUrl ? describe : describe.skip;
const KILLS = 20;
const CUSTOMERS_PER_ROUND = 12;
const CONCURRENCY = 16;

/** A customer's life in six events, a second apart (Stripe's `created` resolution). */
function lifecycle(customer: string, base: number): Stripe.Event[] {
  const statuses = ['trialing', 'active', 'past_due', 'active', Math.random() < 0.5 ? 'canceled' : 'active'];
  return [
    stripeEvent(
      'customer.created',
      { id: customer, object: 'customer', email: `${customer}@example.com` },
      { created: base },
    ),
    ...statuses.map((status, step) =>
      subscriptionEvent(customer, {
        type: step === 0 ? 'created' : status === 'canceled' ? 'deleted' : 'updated',
        status,
        created: base + step + 1,
      }),
    ),
  ];
}

describeWithServer('20 SIGKILLs of random instances under load', () => {
  let db: TestDatabase;
  let sql: Sql;
  let servers: ServerProcess[];
  const alive = new Set<ServerProcess>();

  beforeAll(async () => {
    db = await createTestDatabase();
    servers = await Promise.all(
      ['a', 'b', 'c'].map((name) => serverProcess(db, { INSTANCE_ID: `pw-${name}` })),
    );
    for (const server of servers) {
      await server.start();
      alive.add(server);
    }
    sql = await openDatabase({ url: db.url, dataDir: db.dataDir }, 2);
  }, 60_000);

  afterAll(async () => {
    await Promise.all((servers ?? []).map((server) => server.kill()));
    await sql?.close();
    await db?.drop();
  });

  let cutInFlight = 0;
  /** Delivers `event` to a random live instance until one answers 200, as Stripe retries. */
  async function deliver(event: Stripe.Event): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const targets = [...alive];
      const target = targets[Math.floor(Math.random() * targets.length)];
      const answer = await sendEvent(target.url, event, WEBHOOK_SECRET).catch(() => null);
      if (answer?.status === 200) return;
      // Only a dying instance (no answer) or a 503 is acceptable on the way to a 200.
      if (answer) expect(answer.status).toBe(503);
      else cutInFlight++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${event.id} was never acknowledged`);
  }

  it('loses no acknowledged event, and live state = fold = replay after each kill', async () => {
    const customers: string[] = [];
    const acknowledged: string[] = [];
    const killed: Array<{ instance: string; projecting: boolean; afterAcks: number }> = [];
    for (let round = 0; round < KILLS; round++) {
      const batch = Array.from({ length: CUSTOMERS_PER_ROUND }, () => uid('cus'));
      customers.push(...batch);
      const events = batch
        .flatMap((customer, i) => lifecycle(customer, 1_790_000_000 + round * 1000 + i * 10))
        .sort(() => Math.random() - 0.5);
      // Every third round the projecting instance, otherwise any of the three, after a random share of acks.
      const killAfter = 1 + Math.floor(Math.random() * events.length * 0.8);
      let victim: ServerProcess | undefined;
      let acks = 0;
      let kill: Promise<void> | undefined;
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < events.length) {
            const event = events[next++];
            await deliver(event);
            acknowledged.push(event.id);
            if (++acks !== killAfter) continue;
            const projecting = await Promise.all(
              servers.map(async (server) => (await readiness(server.url)).projector.projecting),
            );
            const index =
              round % 3 === 0 ? projecting.indexOf(true) : Math.floor(Math.random() * servers.length);
            victim = servers[index];
            alive.delete(victim);
            kill = victim.kill();
            killed.push({ instance: victim.url, projecting: projecting[index], afterAcks: acks });
          }
        }),
      );
      await kill;

      const survivor = [...alive][0];
      await settled(survivor.url, 30_000);
      const stored = await sql.query<{ id: string }>(
        `SELECT id FROM stripe_events WHERE id = ANY($1::text[])`,
        [acknowledged],
      );
      expect(stored).toHaveLength(acknowledged.length);
      expect(await pendingEvents(sql)).toEqual([]);
      const live = await Promise.all(batch.map((customer) => stateOn(survivor.url, customer)));
      const folded = await Promise.all(batch.map((customer) => foldedState(sql, customer)));
      expect(live).toEqual(folded);
      expect((await replayToEnd(survivor.url)).state).toBe('done');
      expect(await Promise.all(batch.map((customer) => stateOn(survivor.url, customer)))).toEqual(live);

      await victim!.start();
      alive.add(victim!);
    }
    // Every customer of every round, once more at the end: a later kill or replay disturbed no earlier state.
    await settled(servers[0].url, 30_000);
    for (const customer of customers)
      expect(await stateOn(servers[0].url, customer)).toEqual(await foldedState(sql, customer));
    const [{ count }] = await sql.query<{ count: string }>(`SELECT count(*) FROM stripe_events`);
    expect(Number(count)).toBe(customers.length * 6);
    expect(killed).toHaveLength(KILLS);
    // The kills cut requests in flight: those were sent again to another instance, and are in the log.
    expect(cutInFlight).toBeGreaterThan(0);
    expect(killed.filter((kill) => kill.projecting).length).toBeGreaterThanOrEqual(Math.ceil(KILLS / 3));
  }, 600_000);
});
