/**
 * Upgrading a database that holds events: the outcomes recorded on the log's rows by the previous release
 * move to `stripe_event_outcomes` (migrations/1763900900000-EventOutcomes.ts), the admin API shows the
 * same outcomes after the upgrade as before, and reverting the migration puts them back on the rows.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS, migrate } from '../src/database/database.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';

const describeWithServer = serverUrl ? describe : describe.skip;

describeWithServer('upgrading a database with events', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const dataSource = (migrations: typeof MIGRATIONS) =>
    new DataSource({
      type: 'postgres',
      url: db.url,
      migrations,
      migrationsTableName: 'paywire_migrations',
      logging: false,
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    const previous = dataSource(MIGRATIONS.slice(0, -1));
    await previous.initialize();
    await previous.runMigrations({ transaction: 'each' });
    await previous.destroy();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('moves each recorded outcome to its own row, keeps pending ones pending, and reverts', async () => {
    await client.query(
      `INSERT INTO stripe_events (id, type, created, payload, outcome, reason, processed_at)
       VALUES ('evt_a', 'customer.created', now(), '{}', 'applied', NULL, '2026-11-01T00:00:00Z'),
              ('evt_b', 'charge.succeeded', now(), '{}', 'unlinked', 'no customer yet', '2026-11-02T00:00:00Z'),
              ('evt_c', 'customer.updated', now(), '{}', 'pending', NULL, NULL)`,
    );
    expect(await migrate({ url: db.url, dataDir: db.dataDir })).toEqual(['EventOutcomes1763900900000']);
    const moved = await client.query(
      `SELECT e.id, o.outcome, o.reason, o.processed_at FROM stripe_events e
         LEFT JOIN stripe_event_outcomes o ON o.position = e.position ORDER BY e.id`,
    );
    expect(moved.rows).toEqual([
      { id: 'evt_a', outcome: 'applied', reason: null, processed_at: new Date('2026-11-01T00:00:00Z') },
      {
        id: 'evt_b',
        outcome: 'unlinked',
        reason: 'no customer yet',
        processed_at: new Date('2026-11-02T00:00:00Z'),
      },
      { id: 'evt_c', outcome: null, reason: null, processed_at: null },
    ]);
    const indexes = await client.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'stripe_events'`);
    expect(indexes.rows.map((row) => row.indexname)).not.toContain('stripe_events_outcome');

    await client.query(
      `UPDATE stripe_event_outcomes SET outcome = 'stale', reason = 'older' WHERE outcome = 'applied'`,
    );
    const current = dataSource(MIGRATIONS);
    await current.initialize();
    await current.undoLastMigration({ transaction: 'each' });
    await current.destroy();
    const reverted = await client.query(`SELECT id, outcome, reason FROM stripe_events ORDER BY id`);
    expect(reverted.rows).toEqual([
      { id: 'evt_a', outcome: 'stale', reason: 'older' },
      { id: 'evt_b', outcome: 'unlinked', reason: 'no customer yet' },
      { id: 'evt_c', outcome: 'pending', reason: null },
    ]);
    const table = await client.query(`SELECT to_regclass('stripe_event_outcomes') AS name`);
    expect(table.rows[0].name).toBeNull();
  });
});
