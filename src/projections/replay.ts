/**
 * Rebuilding every projection from the log (SPEC section 4). The rebuild writes fresh `_next` tables in
 * batches while the live projector keeps serving the old ones, so readers see the old state throughout.
 * When it reaches the head it takes the projector's checkpoint lock, folds whatever arrived meanwhile,
 * renames the fresh tables into place and moves the checkpoint, all in one transaction: readers switch to
 * the new state at once, and no event is lost or applied twice. One replay runs at a time. Routes are
 * planned inside PostgreSQL and customers folded a page at a time from their events' fold inputs, so a
 * replay's memory does not grow with the log and it parses a few hundred bytes per event, not ~4 KB.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { Catalog } from '../billing/catalog.js';
import { foldProducts, type ProductFeatures } from '../billing/products.js';
import { SQL, type Sql } from '../database/database.js';
import { logSize, productEvents, readEventsAfter } from '../event-log/log-reads.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { CATALOG } from './catalog.provider.js';
import { ProjectionsRebuilt } from './messages.js';
import { projectBatch } from './project-batch.js';
import { PROJECTION_TABLES, readCheckpoint, saveProducts, writeCheckpoint } from './projection-store.js';
import { foldPage } from './replay-page.js';
import {
  NEXT,
  analyze,
  createNextTables,
  planRoutes,
  readPage,
  settleCustomerless,
  swapTables,
  writePage,
} from './replay-store.js';

export interface ReplayJob {
  jobId: string;
  state: 'running' | 'done' | 'failed';
  processed: number;
  total: number;
  startedAt: string;
  finishedAt: string | null;
}

const BATCH_SIZE = 2000;

/** What the steps of one rebuild share: its job, the head of the log it rebuilds to, the products. */
interface Rebuild {
  job: ReplayJob;
  upTo: number;
  products: ProductFeatures;
}

@Injectable()
export class ReplayService {
  private readonly jobs = new Map<string, ReplayJob>();
  private current: ReplayJob | null = null;
  private readonly waiters = new Map<string, Promise<ReplayJob>>();

  constructor(
    @Inject(SQL) private readonly sql: Sql,
    @Inject(CATALOG) private readonly catalog: Catalog,
    private readonly eventBus: EventBus,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Starts a replay, or returns the one already running. */
  start(onProgress?: (job: ReplayJob) => void): { job: ReplayJob; done: Promise<ReplayJob> } {
    if (this.current) return { job: this.current, done: this.finished(this.current) };
    const job: ReplayJob = {
      jobId: randomUUID(),
      state: 'running',
      processed: 0,
      total: 0,
      startedAt: new Date().toISOString(),
      finishedAt: null,
    };
    this.jobs.set(job.jobId, job);
    this.current = job;
    this.metrics.replayRunning.set(1);
    const progress = (current: ReplayJob) => {
      this.metrics.replayProcessed.set(current.processed);
      this.metrics.replayTotal.set(current.total);
      onProgress?.(current);
    };
    const done = this.run(job, progress)
      .then(() => {
        job.state = 'done';
      })
      .catch((error: unknown) => {
        job.state = 'failed';
        this.logger.error({ jobId: job.jobId, err: { message: (error as Error).message } }, 'replay failed');
      })
      .then(() => {
        job.finishedAt = new Date().toISOString();
        this.current = null;
        this.metrics.replayRunning.set(0);
        return job;
      });
    this.waiters.set(job.jobId, done);
    return { job, done };
  }

  private finished(job: ReplayJob): Promise<ReplayJob> {
    return this.waiters.get(job.jobId) ?? Promise.resolve(job);
  }

  job(jobId: string): ReplayJob | undefined {
    return this.jobs.get(jobId);
  }

  /**
   * The rebuild, as a list of named steps: prepare the `_next` tables, products and routes; fold every
   * customer into them page by page; settle the events no customer holds; then, under the projector's
   * lock, fold what arrived meanwhile and swap the tables in.
   */
  private async run(job: ReplayJob, onProgress: (job: ReplayJob) => void): Promise<void> {
    this.logger.info({ jobId: job.jobId }, 'replay started');
    const rebuild = await this.prepare(job);
    await this.foldCustomers(rebuild, onProgress);
    job.processed += await this.sql.transaction((tx) => settleCustomerless(tx, rebuild.upTo));
    // Statistics before the swap: the live projector's first queries on the new tables are then planned
    // on their real sizes, and autovacuum has no reason to analyze them while webhooks are arriving.
    for (const table of PROJECTION_TABLES) await analyze(this.sql, `${table}_next`);
    const head = await this.catchUpAndSwap(rebuild);
    job.total = Math.max(job.total, job.processed);
    onProgress(job);
    // The broker republishes every state on this (SPEC section 6: published after a replay).
    this.eventBus.publish(new ProjectionsRebuilt(head));
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
          .then(() => {
            job.processed += page.rows.length;
            onProgress(job);
          }),
      );
    }
    await writing;
  }

  /** Folds the events appended meanwhile on top, under the projector's lock, and swaps the tables in. */
  private catchUpAndSwap(rebuild: Rebuild): Promise<number> {
    return this.sql.transaction(async (tx) => {
      await readCheckpoint(tx, true);
      let position = rebuild.upTo;
      for (;;) {
        const events = await readEventsAfter(tx, position, BATCH_SIZE);
        if (events.length === 0) break;
        await projectBatch(tx, NEXT, events, this.catalog);
        position = events[events.length - 1].position;
        rebuild.job.processed += events.length;
      }
      await swapTables(tx);
      await writeCheckpoint(tx, position);
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
