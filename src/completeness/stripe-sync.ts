/**
 * Closing the log's gaps from Stripe's API (SPEC section 8). `StripeSync` runs backfill and gap-healing
 * jobs: it lists Stripe's events oldest first (event-windows.ts) and appends each through the same
 * idempotent path as a webhook, with `source` `api`, so an event that also arrives by webhook is stored
 * once whichever comes first. After each window the job's cursor is committed, which is where a job
 * resumes when its process is killed: at start-up and every few seconds this service adopts running jobs
 * whose runner is gone.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type Stripe from 'stripe';
import { SQL, type Sql } from '../database/database.js';
import { EventLog } from '../event-log/event-log.js';
import { eventToAppend } from '../ingest/stripe-webhook.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { STRIPE } from '../stripe-api/stripe-api.js';
import { eventWindows, type EventWindow } from './event-windows.js';
import {
  HEARTBEAT_SECONDS,
  adoptOrphans,
  createJob,
  finishJob,
  findJob,
  heartbeat,
  saveProgress,
  type JobProgress,
  type SyncJob,
  type SyncJobKind,
} from './sync-jobs.js';

export class StripeApiNotConfigured extends Error {
  constructor() {
    super('STRIPE_SECRET_KEY is not set');
  }
}

/** Stripe keeps events for 30 days (SPEC section 8). */
export const EVENT_RETENTION_SECONDS = 30 * 86400;
const ADOPT_EVERY_MS = 5000;

@Injectable()
export class StripeSync implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly running = new Map<string, Promise<SyncJob>>();
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  /** The backfill jobs this process resumed when it started (a killed job's continuation). */
  resumedAtStart: Promise<SyncJob[]> = Promise.resolve([]);

  constructor(
    @Inject(SQL) private readonly sql: Sql,
    @Inject(STRIPE) private readonly stripe: Stripe | null,
    private readonly log: EventLog,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  get configured(): boolean {
    return this.stripe !== null;
  }

  onApplicationBootstrap(): void {
    if (!this.stripe) return;
    const adopt = () =>
      void this.adopt('backfill').catch((error: unknown) => this.warn('adopting jobs failed', error));
    adopt();
    this.timers = [
      setInterval(() => void adopt(), ADOPT_EVERY_MS).unref(),
      setInterval(() => void this.beat(), HEARTBEAT_SECONDS * 1000).unref(),
    ];
  }

  /** Running jobs stop after their current window and stay `running`, to be resumed by the next process. */
  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled(this.running.values());
  }

  async startBackfill(since: number): Promise<SyncJob> {
    const job = await this.create('backfill', since);
    if (!job) throw new Error('a backfill job could not be created');
    this.launch(job);
    return job;
  }

  /** Creates a running job; null when its kind admits one at a time and one runs (gap healing). */
  async create(kind: SyncJobKind, since: number): Promise<SyncJob | null> {
    if (!this.stripe) throw new StripeApiNotConfigured();
    return createJob(this.sql, kind, since);
  }

  job(id: string): Promise<SyncJob | null> {
    return findJob(this.sql, id);
  }

  /** Runs `job` in the background; the promise settles with its final row. */
  launch(job: SyncJob): Promise<SyncJob> {
    const run = this.run(job).finally(() => this.running.delete(job.id));
    this.running.set(job.id, run);
    return run;
  }

  /** Adopts the running jobs of `kind` whose runners are gone and runs them in the background. */
  async adopt(kind: SyncJobKind): Promise<SyncJob[]> {
    const adopted = await adoptOrphans(this.sql, kind);
    for (const job of adopted) {
      this.logger.info({ jobId: job.id, kind, cursor: job.cursor }, 'resuming job');
      void this.launch(job);
    }
    return adopted;
  }

  private async run(job: SyncJob): Promise<SyncJob> {
    const progress: JobProgress = {
      cursor: job.cursor,
      fetched: job.fetched,
      stored: job.stored,
      duplicates: job.duplicates,
    };
    // One window is stored while the next is listed, so the requests keep to the ceiling's pace instead of
    // pausing for every commit; windows are still committed, and their cursors saved, in order.
    let storing: Promise<boolean> = Promise.resolve(true);
    const stillOurs = async () => (await storing) && !this.stopping;
    try {
      for await (const window of eventWindows(this.stripe!, job.cursor)) {
        if (!(await stillOurs())) break;
        storing = this.store(job, window, progress);
        // Handled here as well, so a failure while the next window is being listed is not an unhandled
        // rejection; the loop's next `stillOurs()` (or the catch below) still sees it.
        storing.catch(() => undefined);
      }
      if (await stillOurs()) {
        await finishJob(this.sql, job.id, null);
        this.logger.info({ jobId: job.id, kind: job.kind, ...progress }, 'job done');
      }
    } catch (error) {
      await storing.catch(() => false);
      if (!this.stopping) {
        await finishJob(this.sql, job.id, describe(error)).catch(() => undefined);
        this.warn(`${job.kind} job failed`, error, job.id);
      }
    }
    return (await findJob(this.sql, job.id).catch(() => null)) ?? { ...job, ...progress };
  }

  /** Appends a window's events and saves the cursor past it; false when the job is no longer this runner's. */
  private async store(job: SyncJob, window: EventWindow, progress: JobProgress): Promise<boolean> {
    const results = await Promise.all(
      window.events.flatMap((event) => {
        try {
          return [this.log.appendEvent(eventToAppend(event, JSON.stringify(event), 'api'))];
        } catch {
          // The API answered something that is not an event object: nothing to store, and nothing that a
          // retry would change. Its id is logged (never its content).
          this.logger.warn(
            { jobId: job.id, eventId: String(event.id).slice(0, 255) },
            'skipped a listed object that is not an event',
          );
          return [];
        }
      }),
    );
    const stored = results.filter((result) => !result.duplicate).length;
    progress.cursor = window.cursor;
    progress.fetched += window.events.length;
    progress.stored += stored;
    progress.duplicates += results.length - stored;
    this.metrics.stripeEventsFetched.inc({ kind: job.kind, result: 'stored' }, stored);
    this.metrics.stripeEventsFetched.inc({ kind: job.kind, result: 'duplicate' }, results.length - stored);
    return saveProgress(this.sql, job.id, progress);
  }

  private async beat(): Promise<void> {
    for (const id of this.running.keys()) {
      await heartbeat(this.sql, id).catch((error: unknown) => this.warn('heartbeat failed', error, id));
    }
  }

  private warn(message: string, error: unknown, jobId?: string): void {
    this.logger.warn({ jobId, err: { message: describe(error) } }, message);
  }
}

/**
 * What a job records of its failure: Stripe's error type and message (which never carry the key), or a
 * generic line for anything else, so no SQL or stack reaches the admin API.
 */
export function describe(error: unknown): string {
  const stripeError = error as { type?: unknown; message?: unknown; statusCode?: unknown };
  if (typeof stripeError.type === 'string' && stripeError.type.startsWith('Stripe')) {
    const status = typeof stripeError.statusCode === 'number' ? ` (${stripeError.statusCode})` : '';
    return `${stripeError.type}${status}: ${String(stripeError.message).slice(0, 300)}`;
  }
  return 'internal error (see the server log)';
}
