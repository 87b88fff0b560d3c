/**
 * A database of its own for each test file: a fresh database on the PostgreSQL server named by
 * `TEST_DATABASE_URL`/`DATABASE_URL` when one is set (CI), embedded PGlite in a temporary folder otherwise
 * (a fresh clone), so files run in parallel and in any order.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  url?: string;
  dataDir: string;
  kind: 'postgres' | 'pglite';
  drop(): Promise<void>;
}

export const serverUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;

export async function createTestDatabase(): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'paywire-test-'));
  if (!serverUrl) {
    return { dataDir, kind: 'pglite', drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const name = `paywire_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    dataDir,
    kind: 'postgres',
    drop: async () => {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
