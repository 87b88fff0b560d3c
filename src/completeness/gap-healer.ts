/**
 * Gap healing (SPEC section 8): every `GAP_HEAL_INTERVAL_SECONDS`, list the events Stripe created since
 * shortly before the previous run's cursor and append those the log lacks, so an event whose webhook never
 * arrives is in the log within two intervals. A run is a `heal` row in `stripe_sync_jobs`, and a unique
 * index admits one running heal row: that is the database lock that keeps healing to one instance at a
 * time (the others skip their turn). A run whose instance died is adopted and finished by the next.
 * Readiness reports healing as failing once no run has succeeded for three intervals.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, type Config } from '../config/config.js';
import { SQL, type Sql } from '../database/database.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { StripeSync } from './stripe-sync.js';
import { lastSucceeded, pruneFinished } from './sync-jobs.js';

/** Each run starts this far before the previous run's cursor: events become listable a little late. */
const OVERLAP_SECONDS = 60;
/** With no successful run yet, the first looks back this far (older gaps are a backfill's job). */
const FIRST_LOOKBACK_SECONDS = 3600;
/** Finished runs are kept this long, for an operator reading `stripe_sync_jobs`. */
const KEEP_RUNS_DAYS = 7;

export interface GapHealingStatus {
  status: 'off' | 'ok' | 'failing';
  intervalSeconds: number;
  lastSuccessAt: string | null;
}

@Injectable()
export class GapHealer implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly startedAt = Date.now();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SQL) private readonly sql: Sql,
    private readonly sync: StripeSync,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  private get enabled(): boolean {
    return this.sync.configured && this.config.gapHealIntervalSeconds > 0;
  }

  onApplicationBootstrap(): void {
    if (this.enabled) this.schedule(0);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One healing turn; resolves when its run (if this instance got the lock) has finished. */
  async heal(): Promise<'done' | 'failed' | 'skipped'> {
    await this.sync.adopt('heal');
    const last = await lastSucceeded(this.sql, 'heal');
    const now = Math.floor(Date.now() / 1000);
    const since = last
      ? last.cursor - OVERLAP_SECONDS
      : now - Math.max(FIRST_LOOKBACK_SECONDS, 2 * this.config.gapHealIntervalSeconds);
    const job = await this.sync.create('heal', since);
    if (!job) return 'skipped';
    await pruneFinished(this.sql, 'heal', KEEP_RUNS_DAYS);
    const finished = await this.sync.launch(job);
    const result = finished.state === 'done' ? 'done' : 'failed';
    this.metrics.gapHealRuns.inc({ result });
    if (result === 'done') {
      this.metrics.gapHealLastSuccess.set((finished.finishedAt ?? new Date()).getTime() / 1000);
      if (finished.stored > 0)
        this.logger.info({ healed: finished.stored }, 'gap healing appended missed events');
    }
    return result;
  }

  async status(): Promise<GapHealingStatus> {
    const intervalSeconds = this.config.gapHealIntervalSeconds;
    if (!this.enabled) return { status: 'off', intervalSeconds, lastSuccessAt: null };
    const last = await lastSucceeded(this.sql, 'heal');
    const since = last?.finishedAt?.getTime() ?? this.startedAt;
    const failing = Date.now() - since > 3 * intervalSeconds * 1000;
    return {
      status: failing ? 'failing' : 'ok',
      intervalSeconds,
      lastSuccessAt: last?.finishedAt?.toISOString() ?? null,
    };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.heal()
        .catch((error: unknown) => {
          this.metrics.gapHealRuns.inc({ result: 'failed' });
          this.logger.warn({ err: { message: (error as Error).message } }, 'gap healing failed');
        })
        .finally(() => this.schedule(this.config.gapHealIntervalSeconds * 1000));
    }, delayMs);
    this.timer.unref();
  }
}
