/**
 * The live projector's first statement of a batch (`lockCheckpointAndReadAfter`): it locks the checkpoint
 * and reads the events after it together with the stored states of the customers they name and the
 * product features, so that the fold starts without another round trip. Those states are only good if the
 * statement's snapshot is not older than the checkpoint it locked: when another projector's batch commits
 * while this one waits for the lock, they must be read again, or the batch folds onto stale states.
 */
import { expect, it } from '@jest/globals';
import { parseCatalog } from '../src/billing/catalog.js';
import type { Sql } from '../src/database/database.js';
import { projectBatch } from '../src/projections/project-batch.js';
import {
  LIVE_TABLES,
  lockCheckpointAndReadAfter,
  type LiveBatchRead,
} from '../src/projections/projection-store.js';
import { serverUrl } from './support/database.js';
import { appendEvents, projectorPools, storedView } from './support/projector-pools.js';
import { foldedState } from './support/folded-state.js';
import { poll } from './support/until.js';
import { stripeEvent, subscriptionEvent, uid } from './support/stripe.js';

const catalog = parseCatalog(JSON.stringify({ prices: { price_pro: ['pro'] } }), 'catalog.json');
const pools = projectorPools();

const emailChanged = (customer: string, email: string, created: number) =>
  stripeEvent('customer.updated', { id: customer, object: 'customer', email }, { created });

/** One live batch as the projector runs it; `beforeFolding` runs with the checkpoint locked. */
function liveBatch(sql: Sql, beforeFolding: () => Promise<void> = async () => undefined) {
  return sql.transaction(async (tx): Promise<LiveBatchRead> => {
    const read = await lockCheckpointAndReadAfter(tx, 500);
    await beforeFolding();
    if (read.events.length > 0)
      await projectBatch(tx, LIVE_TABLES, read.events, catalog, {
        moveCheckpoint: true,
        prefetched: read.prefetched,
        openSeconds: new Map(),
      });
    return read;
  });
}

it('brings the stored states of the customers its events name, and the product features', async () => {
  const [sql] = pools;
  const known = uid('cus');
  const fresh = uid('cus');
  await appendEvents(
    sql,
    stripeEvent(
      'product.updated',
      { id: 'prod_1', object: 'product', metadata: { features: 'pro,api' } },
      { created: 1_799_999_999 },
    ),
    subscriptionEvent(known, { created: 1_800_000_000 }),
  );
  await liveBatch(sql);
  const [storedKnown] = await sql.query<{ state: unknown }>(
    `SELECT state FROM billing_customers WHERE customer_id = $1`,
    [known],
  );

  await appendEvents(
    sql,
    emailChanged(known, 'a@x.test', 1_800_000_001),
    emailChanged(fresh, 'b@x.test', 1_800_000_001),
  );
  const read = await liveBatch(sql);

  expect(read.events.map((event) => event.position)).toEqual(
    [...read.events.map((event) => event.position)].sort((a, b) => a - b),
  );
  expect(read.events).toHaveLength(2);
  expect(read.prefetched).not.toBeNull();
  expect([...read.prefetched!.named].sort()).toEqual([known, fresh].sort());
  expect([...read.prefetched!.states.keys()]).toEqual([known]);
  expect(read.prefetched!.states.get(known)).toEqual(storedKnown.state);
  expect(read.prefetched!.products).toEqual({ prod_1: ['api', 'pro'] });
  for (const customer of [known, fresh])
    expect(await storedView(sql, customer)).toEqual(await foldedState(sql, customer, catalog));
});

(serverUrl ? it : it.skip)(
  'reads the states again when another batch committed while it waited for the lock',
  async () => {
    const [first, second] = pools;
    const customer = uid('cus');
    await appendEvents(first, subscriptionEvent(customer, { created: 1_800_000_100 }));

    let locked!: () => void;
    const holdingLock = new Promise<void>((resolve) => (locked = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The first projector reads the subscription and holds the lock until the second one waits for it.
    const firstBatch = liveBatch(first, async () => {
      locked();
      await released;
    });
    await holdingLock;
    // Appended after the first batch's read: only the second batch folds it, onto the subscription.
    await appendEvents(first, emailChanged(customer, 'late@x.test', 1_800_000_101));
    const secondBatch = liveBatch(second);
    await poll(
      async () =>
        (
          await first.query<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          )
        )[0].waiting,
      (waiting) => waiting > 0,
      10_000,
    );
    release();
    await firstBatch;
    const read = await secondBatch;

    expect(read.events.map((event) => event.type)).toEqual(['customer.updated']);
    expect(read.prefetched).toBeNull();
    const expected = await foldedState(first, customer, catalog);
    expect(expected?.subscriptions).toHaveLength(1);
    expect(expected?.email).toBe('late@x.test');
    expect(await storedView(first, customer)).toEqual(expected);
  },
);
