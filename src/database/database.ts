/**
 * The database seam. TypeORM owns the schema (migrations in `migrations/`, run by the TypeORM CLI through
 * `ormconfig.ts` and at start-up), while the running service talks SQL through this small `Sql` port:
 * the hot paths are hand-written statements (`INSERT … SELECT unnest … ON CONFLICT`, advisory locks,
 * keyset pages) where an ORM adds cost and nothing else. Two adapters implement it: a `pg` pool for a real
 * PostgreSQL server, and embedded PGlite when `DATABASE_URL` is unset. PGlite is a single in-process
 * session, so its transactions must be exclusive; its own `transaction()` queues every other query until
 * the transaction ends, which TypeORM's PGlite shim does not do, hence this port rather than TypeORM's
 * query runner.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { PGliteDriver, getPGliteInstance } from 'typeorm-pglite';
import { PGliteInstance } from 'typeorm-pglite/dist/pglite-instance.js';
import { EventLogSchema1763900000000 } from '../../migrations/1763900000000-EventLogSchema.js';
import { Projections1763900100000 } from '../../migrations/1763900100000-Projections.js';
import { CustomerEventOrder1763900200000 } from '../../migrations/1763900200000-CustomerEventOrder.js';
import { MentionedObjects1763900300000 } from '../../migrations/1763900300000-MentionedObjects.js';
import { FoldInputs1763900400000 } from '../../migrations/1763900400000-FoldInputs.js';
import { EventSources1763900500000 } from '../../migrations/1763900500000-EventSources.js';
import { Completeness1763900600000 } from '../../migrations/1763900600000-Completeness.js';
import { SeveralInstances1763900700000 } from '../../migrations/1763900700000-SeveralInstances.js';
import { AppendDocuments1763900800000 } from '../../migrations/1763900800000-AppendDocuments.js';
import { EventOutcomes1763900900000 } from '../../migrations/1763900900000-EventOutcomes.js';

export const MIGRATIONS = [
  EventLogSchema1763900000000,
  Projections1763900100000,
  CustomerEventOrder1763900200000,
  MentionedObjects1763900300000,
  FoldInputs1763900400000,
  EventSources1763900500000,
  Completeness1763900600000,
  SeveralInstances1763900700000,
  AppendDocuments1763900800000,
  EventOutcomes1763900900000,
];

export interface SqlExecutor {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface TransactionOptions {
  /**
   * False for writes that can be derived again from what is durable (the projections, from the log): the
   * commit then returns before its WAL reaches the disk (`synchronous_commit = off` for this transaction).
   * A crash of the database server can lose such a transaction, whole and alone, never a part of it and
   * never one committed after it; nothing but PostgreSQL's own crash does. Default true.
   */
  synchronousCommit?: boolean;
}

/** A transaction's statements; `queryAndCommit` ends it. */
export interface SqlTransaction extends SqlExecutor {
  /**
   * Runs the transaction's last statement and commits: on PostgreSQL the COMMIT travels with the
   * statement, one round trip fewer. Nothing may be queried after it.
   */
  queryAndCommit<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Sql extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: SqlTransaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** A connection of its own, for what must outlive one query: a session lock, LISTEN. */
  session(): Promise<SqlSession>;
  close(): Promise<void>;
}

/**
 * One connection held by its user. On PostgreSQL it is a client outside the pool, whose session locks
 * are released by the server when the connection (or the process) dies. PGlite is this process's own
 * single session: every session lock is granted and notifications are not needed (nothing else writes).
 */
export interface SqlSession extends SqlExecutor {
  onNotification(listener: (channel: string, payload: string | undefined) => void): void;
  /** Called once when the connection is lost; the session is unusable from then on. */
  onLost(listener: () => void): void;
  release(): Promise<void>;
}

export interface DatabaseTarget {
  /** A postgres:// URL, or undefined for embedded PGlite. */
  url?: string;
  /** Where PGlite keeps its files; `memory://` keeps nothing. */
  dataDir: string;
}

export function pgliteDir(dataDir: string): string | undefined {
  if (dataDir.startsWith('memory://')) return undefined;
  const dir = join(dataDir, 'pgdata');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The TypeORM DataSource for the migrations; also what `ormconfig.ts` hands the TypeORM CLI. */
export function createDataSource(target: DatabaseTarget): DataSource {
  const common = {
    migrations: MIGRATIONS,
    migrationsTableName: 'paywire_migrations',
    logging: false,
  } as const;
  if (target.url) {
    return new DataSource({ type: 'postgres', url: target.url, ...common });
  }
  return new DataSource({
    type: 'postgres',
    driver: new PGliteDriver({ dataDir: pgliteDir(target.dataDir) }).driver,
    ...common,
  });
}

export async function migrate(target: DatabaseTarget): Promise<string[]> {
  const dataSource = createDataSource(target);
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((migration) => migration.name);
  } finally {
    // For PGlite, destroying the DataSource would close the shared in-process instance the service uses.
    if (target.url) await dataSource.destroy();
  }
}

const statementNames = new Map<string, string>();

/**
 * A statement with parameters, as a named prepared statement: each pooled connection parses and plans
 * it once, where an unnamed one is parsed and planned on every call. The projector's and the append's
 * statements run once per batch, so this took a quarter of PostgreSQL's CPU per webhook away
 * (`npm run bench:profile`, BENCHMARKS.md). The texts are the code's own, a fixed set, so the names are
 * too. Statements without parameters may hold several commands, which a prepared statement cannot: they
 * stay unnamed. (Named statements need a session per connection, as Paywire's lease and LISTEN already do:
 * no transaction-mode pooler in between.)
 */
function prepared(text: string, values?: unknown[]): pg.QueryConfig {
  if (!values || values.length === 0) return { text };
  return { name: statementName(text), text, values };
}

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `paywire_${statementNames.size}`));
  return name;
}

/**
 * A transaction on one pooled connection whose BEGIN travels with its first statement, and whose COMMIT
 * with its last when the caller says which that is (`queryAndCommit`): two round trips fewer than sending
 * each alone. A round trip is a socket write and a wake-up on each side; on these two-vCPU machines each
 * cost the projector 0.1-0.4 ms, and a live batch was five of them (`npm run bench:push`, BENCHMARKS.md).
 * Two commands can share a message only in the simple protocol, which carries no parameters, so a
 * statement with parameters rides as `EXECUTE` of a statement prepared once per connection (as `prepared`
 * does in the extended protocol) with its values written as literals. A value that cannot be written as a
 * literal, or values longer than `INLINE_LIMIT` together (a replay's page: PostgreSQL's parser then scans
 * the whole text, where a bound parameter is taken as it is), send BEGIN or COMMIT alone instead.
 */
class PostgresTransaction implements SqlTransaction {
  private state: 'unbegun' | 'open' | 'committed' = 'unbegun';
  private readonly begin: string;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly options: TransactionOptions,
  ) {
    this.begin = options.synchronousCommit === false ? 'BEGIN; SET LOCAL synchronous_commit TO off' : 'BEGIN';
  }

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    this.mustNotBeCommitted();
    if (this.state === 'open') return this.run(text, params);
    const statement = await this.inline(text, params);
    // Open from here on: if the message fails after its BEGIN, the transaction needs its ROLLBACK.
    this.state = 'open';
    if (statement === null) {
      await this.client.query(this.begin);
      return this.run(text, params);
    }
    const results = (await this.client.query(`${this.begin}; ${statement}`)) as unknown as pg.QueryResult[];
    return results[results.length - 1].rows as R[];
  }

  async queryAndCommit<R>(text: string, params?: unknown[]): Promise<R[]> {
    this.mustNotBeCommitted();
    if (this.state === 'unbegun' && this.options.synchronousCommit !== false) {
      // A transaction of one statement is that statement on its own.
      const rows = await this.run<R>(text, params);
      this.state = 'committed';
      return rows;
    }
    const statement = this.state === 'open' ? await this.inline(text, params) : null;
    if (statement === null) {
      const rows = await this.query<R>(text, params);
      await this.commit();
      return rows;
    }
    const results = (await this.client.query(`${statement}; COMMIT`)) as unknown as pg.QueryResult[];
    this.state = 'committed';
    return results[results.length - 2].rows as R[];
  }

  async commit(): Promise<void> {
    if (this.state === 'open') await this.client.query('COMMIT');
    this.state = 'committed';
  }

  async rollback(): Promise<void> {
    if (this.state === 'open') await this.client.query('ROLLBACK').catch(() => undefined);
  }

  /** A statement on its own, in the extended protocol (`prepared`). */
  private async run<R>(text: string, params?: unknown[]): Promise<R[]> {
    return (await this.client.query(prepared(text, params))).rows as R[];
  }

  private mustNotBeCommitted(): void {
    if (this.state === 'committed') throw new Error('this transaction has already committed');
  }

  /** The statement as text with its values inlined, or null when a value cannot be. */
  private async inline(text: string, params?: unknown[]): Promise<string | null> {
    if (!params || params.length === 0) return text;
    const texts = params.map(prepareValue);
    if (!texts.every(inlinable)) return null;
    if (texts.reduce((length: number, value) => length + (value?.length ?? 0), 0) > INLINE_LIMIT) return null;
    const values = texts.map(literal);
    const name = `${statementName(text)}_inline`;
    let names = inlineStatements.get(this.client);
    if (!names) inlineStatements.set(this.client, (names = new Set()));
    if (!names.has(name)) {
      // PREPARE is not transactional: a rollback later does not undo it, so the name stays good.
      await this.client.query(`PREPARE ${name} AS ${text}`);
      names.add(name);
    }
    return `EXECUTE ${name}(${values.join(', ')})`;
  }
}

/** The most characters of values a statement carries as literals; a live batch's write is a few KB. */
const INLINE_LIMIT = 64 * 1024;

/** Per pooled connection, the statements `PostgresTransaction` has prepared at the SQL level. */
const inlineStatements = new WeakMap<pg.ClientBase, Set<string>>();

const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils;

/**
 * Whether a parameter, converted as `pg` converts parameters (arrays, dates, JSON), can ride in a
 * simple-protocol message: not bytes, which are not text, and no NUL character, which ends the message.
 */
function inlinable(text: unknown): text is string | null | undefined {
  return text === null || text === undefined || (typeof text === 'string' && !text.includes('\0'));
}

/**
 * A converted parameter as an SQL literal. Quotes and backslashes are doubled with `replaceAll` rather
 * than `pg.escapeLiteral`, which walks the string one character at a time: 20 times slower on a batch's
 * 23 KB of customer states.
 */
function literal(text: string | null | undefined): string {
  if (text === null || text === undefined) return 'NULL';
  return text.includes('\\')
    ? `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`
    : `'${text.replaceAll("'", "''")}'`;
}

class PostgresSql implements Sql {
  readonly kind = 'postgres';
  constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
  ) {}

  async session(): Promise<SqlSession> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    let lost = false;
    const lostListeners: Array<() => void> = [];
    const markLost = () => {
      if (lost) return;
      lost = true;
      for (const listener of lostListeners) listener();
    };
    // Without an 'error' listener a dropped connection would be an uncaught exception.
    client.on('error', markLost);
    client.on('end', markLost);
    await client.connect();
    return {
      query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[],
      onNotification: (listener) =>
        client.on('notification', (message) => listener(message.channel, message.payload)),
      onLost: (listener) => lostListeners.push(listener),
      release: async () => {
        lost = true;
        await client.end().catch(() => undefined);
      },
    };
  }

  async query<T>(text: string, params?: unknown[]): Promise<T[]> {
    const result = await this.pool.query(prepared(text, params));
    return result.rows as T[];
  }

  async transaction<T>(
    work: (tx: SqlTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out client whose connection dies emits 'error' besides failing its query, and the pool
    // listens only to idle clients: unheard, that event would stop the process (seen when the database
    // was cut during a transaction). The failed query carries the error; the dead client is discarded.
    let lost: Error | undefined;
    const onLost = (error: Error) => (lost = error);
    client.on('error', onLost);
    const tx = new PostgresTransaction(client, options);
    try {
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (error) {
      await tx.rollback();
      throw error;
    } finally {
      client.off('error', onLost);
      client.release(lost);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

type PGliteLike = Awaited<ReturnType<typeof getPGliteInstance>>;

class EmbeddedSql implements Sql {
  readonly kind = 'pglite';
  constructor(private readonly db: PGliteLike) {}

  async session(): Promise<SqlSession> {
    return {
      query: (text, params) => this.query(text, params),
      onNotification: () => undefined,
      onLost: () => undefined,
      release: async () => undefined,
    };
  }

  async query<T>(text: string, params?: unknown[]): Promise<T[]> {
    return (await this.db.query<T>(text, params)).rows;
  }

  /** PGlite writes to a directory of this process's own: `synchronousCommit` has nothing to tune here. */
  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => {
      // In process there is no round trip to save: the commit stays at the end, and only the rule that
      // nothing follows `queryAndCommit` is kept, so code that breaks it fails here too.
      let ended = false;
      const query = async <R>(text: string, params?: unknown[]) => {
        if (ended) throw new Error('this transaction has already committed');
        return (await tx.query<R>(text, params)).rows;
      };
      return work({
        query,
        queryAndCommit: async <R>(text: string, params?: unknown[]) => {
          const rows = await query<R>(text, params);
          ended = true;
          return rows;
        },
      });
    });
  }

  async close(): Promise<void> {
    // Through typeorm-pglite's holder, so that the next open (a restart in the same process) gets a fresh
    // instance instead of the closed one.
    await PGliteInstance.close();
  }
}

/** Applies pending migrations, then opens the service's connection. */
export async function openDatabase(target: DatabaseTarget, poolSize = 16): Promise<Sql> {
  await migrate(target);
  if (target.url) {
    // Named statements (`prepared`) are meant to be planned once per connection, but PostgreSQL's default
    // plan cache mode kept re-planning those filtering by `= ANY($1)`: their custom plans for a short array
    // always looked cheaper than the generic one, which is the same plan (the projector's read of a batch's
    // states and products planned on every call, `npm run bench:profile`). The application's queries are a
    // fixed set of index lookups whose plans do not depend on the values. An `options` parameter in the
    // URL replaces this one.
    const pool = new pg.Pool({
      connectionString: target.url,
      max: poolSize,
      connectionTimeoutMillis: 5000,
      options: '-c plan_cache_mode=force_generic_plan',
    });
    // An idle client that loses its server emits 'error'; without a listener that would kill the process.
    pool.on('error', () => undefined);
    return new PostgresSql(pool, target.url);
  }
  return new EmbeddedSql(await getPGliteInstance());
}

export const SQL = Symbol('paywire.sql');
