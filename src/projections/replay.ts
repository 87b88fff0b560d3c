/**
 * Rebuilding every projection from the log (SPEC section 4). The rebuild writes fresh `_next` tables in
 * batches while the live projector keeps serving the old ones, so readers see the old state throughout.
 * When it reaches the head it takes the projector's checkpoint lock, folds whatever arrived meanwhile,
 * renames the fresh tables into place and moves the checkpoint, all in one transaction: readers switch to
 * the new state at once, and no event is lost or applied twice. One replay runs at a time. Routes are
 * planned inside PostgreSQL and customers folded a page at a time from their events' fold inputs, so a
 * replay's memory does not grow with the log and it parses a few hundred bytes per event, not ~4 KB.
 *
 * A replay is a row of `projection_replays`, so any instance reads its progress and can cancel it (SPEC
 * section 9); a unique index keeps it to one at a time across instances. The swap moves the checkpoint's
 * `generation`, which tells every instance's change feed to push the rebuilt states. A replay whose
 * instance died stops beating and is reported failed.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Catalog } from '../billing/catalog.js';
import { foldProducts, type ProductFeatures } from '../billing/products.js';
import { SQL, type Sql } from '../database/database.js';
import { logSize, productEvents, readEventsAfter } from '../event-log/log-reads.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { CATALOG } from './catalog.provider.js';
import { CONFIG, type Config } from '../config/config.js';
import { feedRows, projectBatch } from './project-batch.js';
import {
  insertFeed,
  PROJECTION_TABLES,
  readCheckpoint,
  saveProducts,
  writeCheckpoint,
} from './projection-store.js';
import { foldPage } from './replay-page.js';
import {
  NEXT,
  analyze,
  createNextTables,
  dropNextTables,
  planRoutes,
  readPage,
  settleCustomerless,
  swapTables,
  writePage,
} from './replay-store.js';

export interface ReplayJob {
  jobId: string;
  state: 'running' | 'done' | 'failed' | 'canceled';
  processed: number;
  total: number;
  startedAt: string;
  finishedAt: string | null;
}

const BATCH_SIZE = 2000;
/** Progress is written at most this often (and the heartbeat with it). */
const SAVE_EVERY_MS = 500;
/** A running replay whose instance has not written for this long is dead. */
const STALE_AFTER = '30 seconds';

class ReplayCanceled extends Error {
  constructor() {
    super('the replay was canceled');
  }
}

interface ReplayRow {
  id: string;
  state: ReplayJob['state'];
  processed: string;
  total: string;
  started_at: Date;
  finished_at: Date | null;
  stale: boolean;
}

const REPLAY_COLUMNS = `id, state, processed, total, started_at, finished_at,
  (state = 'running' AND heartbeat_at < now() - interval '${STALE_AFTER}') AS stale`;

function toJob(row: ReplayRow): ReplayJob {
  return {
    jobId: row.id,
    state: row.stale ? 'failed' : row.state,
    processed: Number(row.processed),
    total: Number(row.total),
    startedAt: new Date(row.started_at).toISOString(),
    finishedAt: row.finished_at ? new Date(row.finished_at).toISOString() : null,
  };
}

/** What the steps of one rebuild share: its job, the head of the log it rebuilds to, the products. */
interface Rebuild {
  job: ReplayJob;
  upTo: number;
  products: ProductFeatures;
}

@Injectable()
export class ReplayService {
  private current: { job: ReplayJob; done: Promise<ReplayJob> } | null = null;
  private lastSaved = 0;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SQL) private readonly sql: Sql,
    @Inject(CATALOG) private readonly catalog: Catalog,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Starts a replay, or returns the one already running (here or on another instance). */
  async start(onProgress?: (job: ReplayJob) => void): Promise<{ job: ReplayJob; done: Promise<ReplayJob> }> {
    if (this.current) return this.current;
    await this.sql.query(
      `UPDATE projection_replays SET state = 'failed', finished_at = now()
        WHERE state = 'running' AND heartbeat_at < now() - interval '${STALE_AFTER}'`,
    );
    const [row] = await this.sql.query<ReplayRow>(
      `INSERT INTO projection_replays (id, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING ${REPLAY_COLUMNS}`,
      [randomUUID(), this.config.instanceId],
    );
    if (!row) {
      const [running] = await this.sql.query<ReplayRow>(
        `SELECT ${REPLAY_COLUMNS} FROM projection_replays WHERE state = 'running'`,
      );
      if (!running) return this.start(onProgress);
      return { job: toJob(running), done: this.waitFor(running.id) };
    }
    const job = toJob(row);
    this.metrics.replayRunning.set(1);
    const progress = (current: ReplayJob) => {
      this.metrics.replayProcessed.set(current.processed);
      this.metrics.replayTotal.set(current.total);
      onProgress?.(current);
    };
    const done = this.run(job, progress)
      .then(() => 'done' as const)
      .catch((error: unknown) => {
        if (error instanceof ReplayCanceled) {
          this.logger.info({ jobId: job.jobId }, 'replay canceled');
          return 'canceled' as const;
        }
        this.logger.error({ jobId: job.jobId, err: { message: (error as Error).message } }, 'replay failed');
        return 'failed' as const;
      })
      .then(async (state) => {
        // Before the job is recorded as ended, so whoever reads it ended finds nothing left behind (a test
        // that read the row and then the tables saw the `_next` tables still there, now and then).
        if (state === 'canceled')
          await this.sql
            .transaction(dropNextTables)
            .catch((error: unknown) =>
              this.logger.error(
                { jobId: job.jobId, err: { message: (error as Error).message } },
                "could not drop the canceled replay's tables",
              ),
            );
        job.state = state;
        job.finishedAt = new Date().toISOString();
        await this.sql
          .query(
            `UPDATE projection_replays SET state = $2, processed = $3, total = $4, finished_at = now() WHERE id = $1`,
            [job.jobId, state, job.processed, job.total],
          )
          .catch((error: unknown) =>
            this.logger.error(
              { jobId: job.jobId, err: { message: (error as Error).message } },
              'could not record the replay',
            ),
          );
        this.current = null;
        this.metrics.replayRunning.set(0);
        return job;
      });
    this.current = { job, done };
    return this.current;
  }

  /** The replay's row, from whichever instance runs or ran it. */
  async job(jobId: string): Promise<ReplayJob | undefined> {
    const [row] = await this.sql.query<ReplayRow>(
      `SELECT ${REPLAY_COLUMNS} FROM projection_replays WHERE id = $1`,
      [jobId],
    );
    return row ? toJob(row) : undefined;
  }

  /** Asks the running replay to stop; false when `jobId` is not running. */
  async cancel(jobId: string): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE projection_replays SET cancel_requested = true WHERE id = $1 AND state = 'running' RETURNING id`,
      [jobId],
    );
    return rows.length > 0;
  }

  private async waitFor(jobId: string): Promise<ReplayJob> {
    for (;;) {
      const job = await this.job(jobId);
      if (!job || job.state !== 'running') return job!;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** Writes progress and beats the heartbeat (at most every SAVE_EVERY_MS); throws when canceled. */
  private async save(job: ReplayJob, force = false): Promise<void> {
    if (!force && Date.now() - this.lastSaved < SAVE_EVERY_MS) return;
    this.lastSaved = Date.now();
    const [row] = await this.sql.query<{ cancel_requested: boolean }>(
      `UPDATE projection_replays SET processed = $2, total = $3, heartbeat_at = now() WHERE id = $1
       RETURNING cancel_requested`,
      [job.jobId, job.processed, job.total],
    );
    if (row?.cancel_requested) throw new ReplayCanceled();
  }

  /**
   * The rebuild, as a list of named steps: prepare the `_next` tables, products and routes; fold every
   * customer into them page by page; settle the events no customer holds; then, under the projector's
   * lock, fold what arrived meanwhile and swap the tables in.
   */
  private async run(job: ReplayJob, onProgress: (job: ReplayJob) => void): Promise<void> {
    this.logger.info({ jobId: job.jobId }, 'replay started');
    const rebuild = await this.prepare(job);
    await this.save(job, true);
    await this.foldCustomers(rebuild, onProgress);
    await this.save(job, true);
    job.processed += await this.sql.transaction((tx) => settleCustomerless(tx, rebuild.upTo));
    // Statistics before the swap: the live projector's first queries on the new tables are then planned
    // on their real sizes, and autovacuum has no reason to analyze them while webhooks are arriving.
    for (const table of PROJECTION_TABLES) await analyze(this.sql, `${table}_next`);
    const head = await this.catchUpAndSwap(rebuild);
    job.total = Math.max(job.total, job.processed);
    onProgress(job);
    this.logger.info({ jobId: job.jobId, processed: job.processed, head }, 'replay done');
  }

  /** Counts the log, creates empty `_next` tables, folds the products and plans every route. */
  private async prepare(job: ReplayJob): Promise<Rebuild> {
    const { count, head } = await logSize(this.sql);
    job.total = count;
    // Fresh statistics first: on a log that grew since the last ANALYZE (a bulk import, a first replay)
    // the planner otherwise answers every page of the rebuild with a scan of the whole log.
    await analyze(this.sql, 'stripe_events');
    await this.sql.transaction(createNextTables);
    const products = foldProducts(await productEvents(this.sql, { upTo: head }));
    await this.sql.transaction(async (tx) => {
      await saveProducts(tx, NEXT, products);
      await planRoutes(tx, head);
    });
    await analyze(this.sql, NEXT.routes);
    return { job, upTo: head, products };
  }

  /**
   * Customer by customer: each customer's events are folded once, in fold order, and written once. Three
   * pages are in flight at a time (one read, one folded, one written), so PostgreSQL and Node work side
   * by side. A customer whose events all came after `upTo` folds to nothing here; the catch-up adds them.
   */
  private async foldCustomers(rebuild: Rebuild, onProgress: (job: ReplayJob) => void): Promise<void> {
    const { job, upTo, products } = rebuild;
    let next = readPage(this.sql, '', upTo);
    let writing: Promise<void> = Promise.resolve();
    for (;;) {
      const page = await next;
      if (page.customers.length === 0) break;
      next = settledLater(readPage(this.sql, page.customers[page.customers.length - 1], upTo));
      // Let the read reach the server before the fold takes the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      const folded = foldPage(page, this.catalog, products);
      await writing;
      writing = settledLater(
        this.sql
          .transaction((tx) => writePage(tx, folded))
          .then(async () => {
            job.processed += page.rows.length;
            onProgress(job);
            await this.save(job);
          }),
      );
    }
    await writing;
  }

  /**
   * Folds the events appended meanwhile on top, under the projector's lock, and swaps the tables in. The
   * notable events of what the live projector had not reached yet go to the feed, as it would have; the
   * new `generation` tells every instance's change feed to push the rebuilt states.
   */
  private catchUpAndSwap(rebuild: Rebuild): Promise<number> {
    return this.sql.transaction(async (tx) => {
      const live = await readCheckpoint(tx, true);
      let position = rebuild.upTo;
      for (;;) {
        const events = await readEventsAfter(tx, position, BATCH_SIZE);
        if (events.length === 0) break;
        const batch = await projectBatch(tx, NEXT, events, this.catalog);
        position = events[events.length - 1].position;
        // The states are pushed whole after the swap; the notable events are for what the live projector
        // had not reached.
        await insertFeed(tx, position, feedRows(events, batch, { states: false, after: live }));
        rebuild.job.processed += events.length;
      }
      await swapTables(tx);
      await writeCheckpoint(tx, position, { rebuilt: true });
      return position;
    });
  }
}

/**
 * A promise awaited later, after other awaits: marked handled now so that, if it fails first, the failure
 * is not reported as unhandled (and the process stopped) before the loop gets to it and rethrows it.
 */
function settledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
