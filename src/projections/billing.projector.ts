/**
 * The live projector: keeps the projection tables at the head of the log. It wakes when this instance's
 * event log commits an append, and every second as a safety net (events appended by another instance, or
 * a batch that failed). Each batch reads the log after the checkpoint, folds it and writes the tables, the
 * events' outcomes, the feed of changed states and notable events and the new checkpoint in one
 * transaction, holding the checkpoint row's lock: a crash at any point loses nothing and applies nothing
 * twice. That transaction does not wait for its WAL flush, since the log it derives from did (below). Between
 * batches the projector keeps each customer's open second (`OpenSeconds`).
 *
 * With several instances on one database, one projects (SPEC section 9): the one holding a session
 * advisory lock on a connection of its own. The server releases that lock when the connection or the
 * process dies, and the others try for it every second, so another instance takes over within about a
 * second. Correctness does not rest on the lease (the checkpoint row's lock already serialises batches);
 * it keeps the others from queueing on that lock. An instance that does not project announces its
 * appends (`NOTIFY paywire_appended`, after the commit the webhook waited for), and the projecting one
 * listens on its lease's connection: a webhook that reached another instance is projected at once, not at
 * the next safety pass. Each checkpoint write notifies every instance (`pg_notify`, delivered at commit),
 * and the projector wakes its own change feed after the commit.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { Catalog } from '../billing/catalog.js';
import { CONFIG, type Config } from '../config/config.js';
import { SQL, type Sql, type SqlSession } from '../database/database.js';
import { EventLog } from '../event-log/event-log.js';
import { eventsAfterCount } from '../event-log/log-reads.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { CATALOG } from './catalog.provider.js';
import { CoalescedPasses } from './coalesced-passes.js';
import { ProjectionCommitted } from './messages.js';
import { OpenSeconds } from './open-seconds.js';
import { projectBatch } from './project-batch.js';
import { LIVE_TABLES, lockCheckpointAndReadAfter, readCheckpoint } from './projection-store.js';

const BATCH_SIZE = 500;
const PROJECTION_COMMIT = { synchronousCommit: false };
const SAFETY_INTERVAL_MS = 1000;
/**
 * The projector's lease: any constant shared by every instance (the append lock is 0x50617977). Exported
 * for the benchmarks that measure ingest alone by holding it.
 */
export const PROJECTOR_LEASE = 0x5061_7978;
/** The feed is for subscribers connected now; an instance further behind than this skips to the head. */
const FEED_RETENTION = '10 minutes';
/** The leaseholder prunes the feed this often (off the batches' path). */
const PRUNE_EVERY_MS = 60_000;
/** Where an instance that does not project tells the one that does that the log has grown. */
const APPEND_CHANNEL = 'paywire_appended';

@Injectable()
export class BillingProjector implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly passes = new CoalescedPasses(
    () => this.drain(),
    (error) =>
      this.logger.error(
        { err: { message: (error as Error).message } },
        'projection batch failed; retrying shortly',
      ),
  );
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lease: SqlSession | null = null;
  private leasing: Promise<void> | null = null;
  private prunedAt = 0;
  private readonly openSeconds = new OpenSeconds();
  private readonly appendAnnouncements = new CoalescedPasses(
    () => this.sql.query(`SELECT pg_notify('${APPEND_CHANNEL}', '')`).then(() => undefined),
    (error) =>
      this.logger.warn(
        { err: { message: (error as Error).message } },
        'could not announce an append to the projecting instance; it finds it within a second',
      ),
  );

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SQL) private readonly sql: Sql,
    @Inject(CATALOG) private readonly catalog: Catalog,
    private readonly eventLog: EventLog,
    private readonly eventBus: EventBus,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.eventLog.onAppended(() => (this.lease ? this.wake() : this.appendAnnouncements.wake()));
    this.timer = setInterval(() => {
      if (!this.lease) return void this.tryToLead();
      this.wake();
      if (Date.now() - this.prunedAt >= PRUNE_EVERY_MS) {
        void this.pruneFeed();
        void this.warnOfAFillingNotificationQueue();
      }
    }, SAFETY_INTERVAL_MS);
    this.timer.unref();
    await this.warnWithoutAutovacuum();
    await this.tryToLead();
  }

  /**
   * Every batch rewrites the rows of the customers it changed, so the projection tables hold many dead
   * row versions per live one until they are vacuumed. Without autovacuum each lookup wades through them
   * and projection slows down hour by hour (BENCHMARKS.md, soak): say so at start, where an operator looks.
   */
  private async warnWithoutAutovacuum(): Promise<void> {
    if (this.sql.kind !== 'postgres') return;
    const [row] = await this.sql.query<{ setting: string }>(
      `SELECT setting FROM pg_settings WHERE name = 'autovacuum'`,
    );
    if (row?.setting === 'off')
      this.logger.warn(
        { autovacuum: 'off' },
        'PostgreSQL has autovacuum off: the projection tables will bloat and projection will slow down; turn it on',
      );
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.passes.idle();
    await this.appendAnnouncements.idle();
    // Released at once, so another instance takes over without waiting for this connection to time out.
    await this.lease?.release();
    this.lease = null;
    this.metrics.projecting.set(0);
  }

  /** Whether this instance holds the projector's lease. */
  get projecting(): boolean {
    return this.lease !== null;
  }

  private tryToLead(): Promise<void> {
    this.leasing ??= this.acquireLease().finally(() => (this.leasing = null));
    return this.leasing;
  }

  private async acquireLease(): Promise<void> {
    if (this.lease || this.stopped) return;
    let session: SqlSession | null = null;
    try {
      session = await this.sql.session();
      const [row] = await session.query<{ leased: boolean }>(`SELECT pg_try_advisory_lock($1) AS leased`, [
        PROJECTOR_LEASE,
      ]);
      if (!row.leased || this.stopped) {
        await session.release();
        return;
      }
      const held = session;
      held.onNotification(() => this.wake());
      await held.query(`LISTEN ${APPEND_CHANNEL}`);
      held.onLost(() => {
        if (this.lease !== held) return;
        this.lease = null;
        this.metrics.projecting.set(0);
        this.logger.warn({ instance: this.config.instanceId }, 'projector lease lost with its connection');
      });
      this.lease = held;
      this.metrics.projecting.set(1);
      this.logger.info({ instance: this.config.instanceId }, 'this instance projects');
      this.wake();
    } catch (error) {
      await session?.release();
      this.logger.warn(
        { err: { message: (error as Error).message } },
        'could not ask for the projector lease',
      );
    }
  }

  private async pruneFeed(): Promise<void> {
    this.prunedAt = Date.now();
    // By the key, not by `created_at` (not indexed): the rows past the retention are the lowest batches,
    // so the delete reads what it removes, where a filter on `created_at` scanned the whole feed (about
    // 300,000 rows at 500 webhooks/s) every minute. With no recent row, every row is old.
    await this.sql
      .query(
        `DELETE FROM billing_feed WHERE batch < COALESCE(
           (SELECT batch FROM billing_feed WHERE created_at >= now() - interval '${FEED_RETENTION}'
             ORDER BY batch, seq LIMIT 1),
           9223372036854775807)`,
      )
      .catch((error: unknown) =>
        this.logger.warn({ err: { message: (error as Error).message } }, 'could not prune the change feed'),
      );
  }

  /** Asks for a drain; calls that arrive while one runs coalesce into one more pass. */
  wake(): void {
    if (this.stopped || !this.lease) return;
    this.passes.wake();
  }

  /** Resolves once everything appended so far is projected. */
  idle(): Promise<void> {
    return this.passes.idle();
  }

  /**
   * Batches until one comes back short of `BATCH_SIZE`: it read everything committed before it, and an
   * append that commits later wakes another pass. Going on until a batch came back empty cost every
   * lone webhook a second transaction that found nothing (three round trips).
   */
  private async drain(): Promise<void> {
    while (!this.stopped && (await this.projectOneBatch()) === BATCH_SIZE);
  }

  private async projectOneBatch(): Promise<number> {
    // The batch commits without waiting for its WAL to reach the disk: everything it writes is derived
    // from the log, whose appends wait. Should PostgreSQL itself crash within that moment, the batch is
    // lost whole, checkpoint included, and projected again from the log into the same states.
    const result = await this.sql.transaction(async (tx) => {
      const { checkpoint, checkpointXmin, events, prefetched } = await lockCheckpointAndReadAfter(
        tx,
        BATCH_SIZE,
      );
      if (events.length === 0) return null;
      const batch = await projectBatch(tx, LIVE_TABLES, events, this.catalog, {
        moveCheckpoint: true,
        prefetched,
        openSeconds: this.openSeconds.validFor(checkpointXmin),
      });
      const head = events[events.length - 1].position;
      return {
        events,
        batch,
        head,
        committed: new ProjectionCommitted(head, checkpoint, batch.generation, batch.feed),
      };
    }, PROJECTION_COMMIT);
    if (!result) return 0;
    this.openSeconds.remember(result.batch);
    this.eventBus.publish(result.committed);
    const committedAt = Date.now();
    const types = new Map(result.events.map((event) => [event.id, event.type]));
    for (const event of result.events) {
      if (event.receivedAt !== undefined)
        this.metrics.projectionLagSeconds.observe((committedAt - event.receivedAt) / 1000);
    }
    for (const outcome of result.batch.outcomes) {
      this.metrics.projected.inc({ outcome: outcome.outcome });
      const fields = {
        eventId: outcome.id,
        eventType: types.get(outcome.id),
        customerId: outcome.customerId,
        outcome: outcome.outcome,
        reason: outcome.reason,
      };
      if (outcome.outcome === 'failed') this.logger.warn(fields, 'event failed to project');
      else this.logger.debug(fields, 'event projected');
    }
    return result.events.length;
  }

  /**
   * The share of PostgreSQL's notification queue in use. Every batch's commit notifies (the change feeds'
   * wake-up), and the queue only shrinks as far as its slowest listener has read: a connection that
   * listens and stops reading (an instance frozen with its connection open, a listener left in an open
   * transaction) grows it until, full, it fails the commits, and projection stops on every instance. The
   * leaseholder looks every minute and warns well before that; `/metrics` reads it at each scrape.
   */
  async notificationQueueUsage(): Promise<number> {
    const [row] = await this.sql.query<{ usage: number }>(`SELECT pg_notification_queue_usage() AS usage`);
    return row.usage;
  }

  private async warnOfAFillingNotificationQueue(): Promise<void> {
    const usage = await this.notificationQueueUsage().catch(() => 0);
    if (usage >= 0.5)
      this.logger.warn(
        { notificationQueueUsage: usage },
        "PostgreSQL's notification queue is over half full: a connection LISTENs without reading (see pg_stat_activity); when it is full, projection stops",
      );
  }

  async lag(): Promise<{ checkpoint: number; behind: number }> {
    const checkpoint = await readCheckpoint(this.sql, false);
    return { checkpoint, behind: await eventsAfterCount(this.sql, checkpoint) };
  }
}
