/**
 * The live projector's open seconds (`OpenSeconds`, issue 15): a customer's events that share a second
 * arrive in separate batches, in an order that the causal rank undoes, and each batch folds them into the
 * state the whole log folds to, without reading the customer's history back. Two projectors taking turns
 * on one database (two instances) each drop what they knew once the other wrote, and still converge.
 */
import { describe, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { EMPTY_CATALOG } from '../src/billing/catalog.js';
import type { Sql, SqlTransaction } from '../src/database/database.js';
import { OpenSeconds } from '../src/projections/open-seconds.js';
import { projectBatch, type CommittedBatch } from '../src/projections/project-batch.js';
import { LIVE_TABLES, lockCheckpointAndReadAfter } from '../src/projections/projection-store.js';
import { serverUrl } from './support/database.js';
import { appendEvents, projectorPools, storedView } from './support/projector-pools.js';
import { foldedState } from './support/folded-state.js';
import { stripeEvent, uid } from './support/stripe.js';

const pools = projectorPools();

/** One live batch as the projector runs it, with the statements it sent that read a customer's history. */
async function liveBatch(
  sql: Sql,
  seconds: OpenSeconds,
): Promise<{ historyReads: number; batch: CommittedBatch | null }> {
  let historyReads = 0;
  const batch = await sql.transaction(async (tx) => {
    const read = await lockCheckpointAndReadAfter(tx, 500);
    if (read.events.length === 0) return null;
    const counted: SqlTransaction = {
      query: (text, params) => {
        if (/PARTITION BY object_id, created\) = 1/.test(text)) historyReads += 1;
        return tx.query(text, params);
      },
      queryAndCommit: (text, params) => tx.queryAndCommit(text, params),
    };
    return projectBatch(counted, LIVE_TABLES, read.events, EMPTY_CATALOG, {
      moveCheckpoint: true,
      prefetched: read.prefetched,
      openSeconds: seconds.validFor(read.checkpointXmin),
    });
  });
  if (batch) seconds.remember(batch);
  return { historyReads, batch };
}

const SECOND = 1_800_000_500;

/** A subscription's life within one second, in causal order: each update names what the one before set. */
function oneSecondOfSubscription(customer: string): Stripe.Event[] {
  const subscription = `sub_${customer}`;
  const object = (status: string, quantity: number) => ({
    id: subscription,
    object: 'subscription' as const,
    customer,
    status: status as Stripe.Subscription.Status,
    cancel_at_period_end: false,
    items: {
      object: 'list' as const,
      data: [{ id: `si_${customer}`, quantity, price: { id: 'price_pro', product: 'prod_pro' } }],
    },
  });
  return [
    stripeEvent('customer.subscription.created', object('incomplete', 1), { created: SECOND }),
    stripeEvent('customer.subscription.updated', object('active', 1), {
      created: SECOND,
      previous: { status: 'incomplete' },
    }),
    stripeEvent('customer.subscription.updated', object('active', 3), {
      created: SECOND,
      previous: { items: object('active', 1).items },
    }),
    stripeEvent('customer.subscription.updated', object('past_due', 3), {
      created: SECOND,
      previous: { status: 'active' },
    }),
  ];
}

describe('one projector', () => {
  it('folds same-second events delivered in reverse across batches as the log does, reading no history', async () => {
    const [sql] = pools;
    const seconds = new OpenSeconds();
    const customer = uid('cus');
    const events = oneSecondOfSubscription(customer).reverse();
    const reads: number[] = [];
    for (const event of events) {
      await appendEvents(sql, event);
      const { historyReads, batch } = await liveBatch(sql, seconds);
      expect(batch?.outcomes.map((outcome) => outcome.id)).toEqual([event.id]);
      reads.push(historyReads);
      expect(await storedView(sql, customer)).toEqual(await foldedState(sql, customer));
    }
    // The causal order puts the last delivered event first: the final state is the past_due one.
    expect(await storedView(sql, customer)).toMatchObject({
      subscriptions: [{ status: 'past_due', items: [expect.objectContaining({ quantity: 3 })] }],
    });
    // The first batch opens the second; every later one resumes it.
    expect(reads).toEqual([0, 0, 0, 0]);
  });

  it('reads the history for an event older than the open second', async () => {
    const [sql] = pools;
    const seconds = new OpenSeconds();
    const customer = uid('cus');
    const email = (address: string, created: number) =>
      stripeEvent('customer.updated', { id: customer, object: 'customer', email: address }, { created });
    await appendEvents(sql, email('new@x.test', SECOND + 1));
    await liveBatch(sql, seconds);
    await appendEvents(sql, email('old@x.test', SECOND));
    const { historyReads } = await liveBatch(sql, seconds);
    expect(historyReads).toBe(1);
    expect(await storedView(sql, customer)).toMatchObject({ email: 'new@x.test' });
    expect(await storedView(sql, customer)).toEqual(await foldedState(sql, customer));
  });
});

(serverUrl ? describe : describe.skip)('two projectors taking turns', () => {
  it('each forgets its open seconds when the other wrote, and the states are the fold of the log', async () => {
    const projectors = pools.map((sql) => ({ sql, seconds: new OpenSeconds() }));
    const customers = Array.from({ length: 6 }, () => uid('cus'));
    // Every customer's events, interleaved and each customer's reversed, one batch each; the projectors take
    // turns of three batches, so each resumes open seconds within a turn and must forget them across turns.
    const lives = customers.map((customer) => oneSecondOfSubscription(customer).reverse());
    const deliveries = lives[0].flatMap((_, i) => lives.map((life) => life[i]));
    for (const [i, event] of deliveries.entries()) {
      const turn = Math.floor(i / 3) % 2;
      const projector = projectors[turn];
      await appendEvents(projector.sql, event);
      const { batch } = await liveBatch(projector.sql, projector.seconds);
      expect(batch).not.toBeNull();
      // The other projector's entries no longer describe the tables.
      const [{ xmin }] = await projector.sql.query<{ xmin: string }>(
        `SELECT xmin::text AS xmin FROM projector_checkpoints WHERE name = 'billing'`,
      );
      expect(projectors[1 - turn].seconds.validFor(xmin).size).toBe(0);
      expect(projector.seconds.validFor(xmin).size).toBeGreaterThan(0);
    }
    for (const customer of customers)
      expect(await storedView(pools[0], customer)).toEqual(await foldedState(pools[0], customer));
  });
});
