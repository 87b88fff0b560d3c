/**
 * The database seam's transactions (src/database/database.ts). On PostgreSQL a transaction's BEGIN rides
 * with its first statement and its COMMIT with the statement given to `queryAndCommit`, so a statement
 * with parameters travels as `EXECUTE` with its values written as SQL literals. These tests hold that
 * path to what the parameters of the extended protocol give, value for value, and check that the commit
 * and the rollback still happen where they must. One pooled connection, so every transaction reuses the
 * statements the earlier ones prepared on it, the failed ones included.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { openDatabase, type Sql } from '../src/database/database.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let sql: Sql;
/** A second pool: another session, which sees only what has committed. */
let other: Sql;

beforeAll(async () => {
  db = await createTestDatabase();
  const target = { url: db.url, dataDir: db.dataDir };
  sql = await openDatabase(target, 1);
  other = db.url ? await openDatabase(target, 1) : sql;
  await sql.query(`CREATE TABLE tx_probe (id text PRIMARY KEY, n int NOT NULL)`);
});

afterAll(async () => {
  if (other !== sql) await other.close();
  await sql?.close();
  await db?.drop();
});

/** Values that a hand-made literal could get wrong: quotes, backslashes, array syntax, nulls, JSON, time. */
const awkward: unknown[] = [
  `o'neil \\ '' \\' "q" ; -- COMMIT`,
  JSON.stringify({ email: "o'neil@x.test", path: 'C:\\tmp\\new', nested: { quote: '"', unicode: 'é✓' } }),
  ['plain', "it's", 'back\\slash', 'comma,brace{}', '"dq"', null, ''],
  [1, 9_007_199_254_740_991, -3],
  [true, false],
  new Date('2026-12-02T10:11:12.345Z'),
  null,
  42,
];
const probe = `SELECT $1::text AS a, $2::jsonb AS b, $3::text[] AS c, $4::bigint[] AS d, $5::boolean[] AS e,
  $6::timestamptz AS f, $7::text AS g, $8::int AS h`;

it('gives a statement the values it was sent, first in a transaction, in the middle and with the commit', async () => {
  const [expected] = await sql.query(probe, awkward);
  const rows = await sql.transaction(async (tx) => [
    (await tx.query(probe, awkward))[0],
    (await tx.query(probe, awkward))[0],
    (await tx.queryAndCommit(probe, awkward))[0],
  ]);
  expect(expected.a).toBe(awkward[0]);
  expect(expected.c).toEqual(awkward[2]);
  for (const row of rows) expect(row).toEqual(expected);
});

it('writes backslashes that a server with standard_conforming_strings off reads as they were sent', async () => {
  // One pooled connection: the setting holds for the transaction's session.
  await sql.query(`SET standard_conforming_strings = off`);
  try {
    const rows = await sql.transaction(async (tx) => [
      (await tx.query(probe, awkward))[0],
      (await tx.queryAndCommit(probe, awkward))[0],
    ]);
    for (const row of rows)
      expect([row.a, row.b, row.c]).toEqual([awkward[0], JSON.parse(awkward[1] as string), awkward[2]]);
  } finally {
    await sql.query(`SET standard_conforming_strings = on`);
  }
});

it('runs statements whose values are too long to travel as literals, and commits them', async () => {
  const long = `o'neil \\ `.repeat(20_000);
  const rows = await sql.transaction(async (tx) => [
    (await tx.query(`SELECT length($1::text) AS n, $1::text = $2::text AS same`, [long, long]))[0],
    (
      await tx.queryAndCommit(`INSERT INTO tx_probe (id, n) VALUES ($1, $2) RETURNING length(id) AS n`, [
        long,
        0,
      ])
    )[0],
  ]);
  expect(rows).toEqual([{ n: long.length, same: true }, { n: long.length }]);
  expect(await other.query(`SELECT n FROM tx_probe WHERE id = $1`, [long])).toEqual([{ n: 0 }]);
  await sql.query(`DELETE FROM tx_probe WHERE id = $1`, [long]);
});

it('has committed when the statement given the commit resolves, and refuses statements after it', async () => {
  const visibleAfterCommit = await sql.transaction(async (tx) => {
    await tx.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['first', 1]);
    await tx.queryAndCommit(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['last', 2]);
    // Another session sees both rows already. Embedded PGlite is one session and commits at the end.
    const seen = db.url ? await other.query(`SELECT id FROM tx_probe ORDER BY id`) : null;
    await expect(tx.query(`SELECT 1`)).rejects.toThrow('already committed');
    return seen;
  });
  if (db.url) expect(visibleAfterCommit).toEqual([{ id: 'first' }, { id: 'last' }]);
  expect(await other.query(`SELECT id, n FROM tx_probe ORDER BY id`)).toEqual([
    { id: 'first', n: 1 },
    { id: 'last', n: 2 },
  ]);
});

it('rolls the whole transaction back when the statement given the commit fails', async () => {
  await expect(
    sql.transaction(async (tx) => {
      await tx.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['kept-out', 3]);
      await tx.queryAndCommit(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['first', 4]);
    }),
  ).rejects.toMatchObject({ code: '23505' });
  expect(await other.query(`SELECT id FROM tx_probe WHERE id = $1`, ['kept-out'])).toEqual([]);
  // The connection is back in the pool out of the failed transaction, and usable.
  expect(await sql.transaction((tx) => tx.queryAndCommit(`SELECT count(*)::int AS n FROM tx_probe`))).toEqual(
    [{ n: 2 }],
  );
});

it('rolls back when the work throws after a first statement that carried the BEGIN', async () => {
  await expect(
    sql.transaction(async (tx) => {
      await tx.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['thrown', 5]);
      throw new Error('work failed');
    }),
  ).rejects.toThrow('work failed');
  expect(await other.query(`SELECT id FROM tx_probe WHERE id = $1`, ['thrown'])).toEqual([]);
});

it('fails a value PostgreSQL refuses as it would outside a transaction, and the next transaction runs', async () => {
  const withNul = ['nul\u0000inside', 6];
  const outside = await sql.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, withNul).catch((e) => e);
  const inside = await sql
    .transaction((tx) => tx.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, withNul))
    .catch((e: unknown) => e);
  expect(inside).toBeInstanceOf(Error);
  expect((inside as { code?: string }).code).toBe((outside as { code?: string }).code);
  await sql.transaction((tx) => tx.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['after', 7]));
  expect(await other.query(`SELECT n FROM tx_probe WHERE id = $1`, ['after'])).toEqual([{ n: 7 }]);
});

(serverUrl ? it : it.skip)(
  'commits a transaction that does not wait for its WAL flush, for that transaction only',
  async () => {
    const setting = async (tx: { query: Sql['query'] }) =>
      (await tx.query<{ synchronous_commit: string }>(`SHOW synchronous_commit`))[0].synchronous_commit;
    // A transaction whose BEGIN rides with its first statement, and one of a single statement given the
    // commit (which without the option is sent on its own, with no BEGIN).
    const seen = await sql.transaction(
      async (tx) => {
        await tx.query(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['async-1', 8]);
        const inside = await setting(tx);
        await tx.queryAndCommit(`INSERT INTO tx_probe (id, n) VALUES ($1, $2)`, ['async-2', 9]);
        return inside;
      },
      { synchronousCommit: false },
    );
    const alone = await sql.transaction(
      (tx) => tx.queryAndCommit<{ synchronous_commit: string }>(`SHOW synchronous_commit`),
      { synchronousCommit: false },
    );
    expect([seen, alone[0].synchronous_commit]).toEqual(['off', 'off']);
    expect(await other.query(`SELECT n FROM tx_probe WHERE id LIKE 'async-%' ORDER BY id`)).toEqual([
      { n: 8 },
      { n: 9 },
    ]);
    // The same pooled connection is back to the server's setting for the next transaction.
    expect(await sql.transaction((tx) => setting(tx))).toBe('on');
  },
);
