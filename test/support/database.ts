/**
 * A database of its own for each test file: a fresh database on the PostgreSQL server named by
 * `TEST_DATABASE_URL`/`DATABASE_URL` when one is set (CI), embedded PGlite in a temporary folder otherwise
 * (a fresh clone), so files run in parallel and in any order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScratchDatabase } from '../../bench/scratch-database.js';

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
  const scratch = await createScratchDatabase(serverUrl, 'paywire_test');
  return {
    url: scratch.url,
    dataDir,
    kind: 'postgres',
    drop: async () => {
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
