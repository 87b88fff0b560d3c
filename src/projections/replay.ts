/**
 * Rebuilding every projection from the log (SPEC section 4). The rebuild writes fresh `_next` tables in
 * batches while the live projector keeps serving the old ones, so readers see the old state throughout.
 * When it reaches the head it takes the projector's checkpoint lock, folds whatever arrived meanwhile,
 * renames the fresh tables into place and moves the checkpoint, all in one transaction: readers switch to
 * the new state at once, and no event is lost or applied twice. One replay runs at a time.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { Catalog } from '../billing/catalog.js';
import { SQL, type Sql, type SqlExecutor } from '../database/database.js';
import { readEventsAfter } from '../event-log/event-log.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { CATALOG } from './catalog.provider.js';
import { ProjectionsRebuilt } from './messages.js';
import { projectBatch } from './project-batch.js';
import { PROJECTION_TABLES, readCheckpoint, tablesWithSuffix, writeCheckpoint } from './projection-store.js';

export interface ReplayJob {
  jobId: string;
  state: 'running' | 'done' | 'failed';
  processed: number;
  total: number;
  startedAt: string;
  finishedAt: string | null;
}

const BATCH_SIZE = 2000;
const NEXT = tablesWithSuffix('_next');

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

  private async run(job: ReplayJob, onProgress?: (job: ReplayJob) => void): Promise<void> {
    this.logger.info({ jobId: job.jobId }, 'replay started');
    const [count] = await this.sql.query<{ total: string | number }>(
      `SELECT count(*) AS total FROM stripe_events`,
    );
    job.total = Number(count.total);
    await this.sql.transaction(async (tx) => {
      for (const table of PROJECTION_TABLES) {
        await tx.query(`DROP TABLE IF EXISTS ${table}_next`);
        await tx.query(`CREATE TABLE ${table}_next (LIKE ${table} INCLUDING ALL)`);
      }
    });
    let position = 0;
    for (;;) {
      const events = await readEventsAfter(this.sql, position, BATCH_SIZE);
      if (events.length < BATCH_SIZE) break;
      await this.sql.transaction((tx) => projectBatch(tx, NEXT, events, this.catalog));
      position = events[events.length - 1].position;
      job.processed += events.length;
      onProgress?.(job);
    }
    const head = await this.sql.transaction(async (tx) => {
      await readCheckpoint(tx, true);
      for (;;) {
        const events = await readEventsAfter(tx, position, BATCH_SIZE);
        if (events.length === 0) break;
        await projectBatch(tx, NEXT, events, this.catalog);
        position = events[events.length - 1].position;
        job.processed += events.length;
      }
      await swapTables(tx);
      await writeCheckpoint(tx, position);
      return position;
    });
    job.total = Math.max(job.total, job.processed);
    onProgress?.(job);
    // The broker republishes every state on this (SPEC section 6: published after a replay).
    this.eventBus.publish(new ProjectionsRebuilt(head));
    this.logger.info({ jobId: job.jobId, processed: job.processed, head }, 'replay done');
  }
}

async function swapTables(tx: SqlExecutor): Promise<void> {
  for (const table of PROJECTION_TABLES) {
    await tx.query(`ALTER TABLE ${table} RENAME TO ${table}_old`);
    await tx.query(`ALTER TABLE ${table}_next RENAME TO ${table}`);
    await tx.query(`DROP TABLE ${table}_old`);
  }
}
