/**
 * The live projector: keeps the projection tables at the head of the log. It wakes when this instance's
 * event log commits an append, and every second as a safety net (events appended by
 * another instance, or a batch that failed). Each batch reads the log after a durable checkpoint, folds
 * it and writes the tables, the events' outcomes and the new checkpoint in one transaction, holding the
 * checkpoint row's lock: a crash at any point loses nothing and applies nothing twice, and two instances
 * (or a replay's final swap) never project the same events at once.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventBus } from '@nestjs/cqrs';
import type { Catalog } from '../billing/catalog.js';
import { SQL, type Sql } from '../database/database.js';
import { EventLog } from '../event-log/event-log.js';
import { eventsAfterCount, readEventsAfter } from '../event-log/log-reads.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { CATALOG } from './catalog.provider.js';
import { notableEvent } from '../billing/notable.js';
import { CustomerStateChanged, NotableEventProjected } from './messages.js';
import { projectBatch } from './project-batch.js';
import { LIVE_TABLES, readCheckpoint, writeCheckpoint } from './projection-store.js';

const BATCH_SIZE = 500;
const SAFETY_INTERVAL_MS = 1000;

@Injectable()
export class BillingProjector implements OnApplicationBootstrap, OnApplicationShutdown {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    @Inject(SQL) private readonly sql: Sql,
    @Inject(CATALOG) private readonly catalog: Catalog,
    private readonly eventLog: EventLog,
    private readonly eventBus: EventBus,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  onApplicationBootstrap(): void {
    this.eventLog.onAppended(() => this.wake());
    this.timer = setInterval(() => this.wake(), SAFETY_INTERVAL_MS);
    this.timer.unref();
    this.wake();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Asks for a drain; calls that arrive while one runs coalesce into one more pass. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Resolves once everything appended so far is projected. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (!this.stopped && (await this.projectOneBatch()) > 0);
    } catch (error) {
      this.logger.error(
        { err: { message: (error as Error).message } },
        'projection batch failed; retrying shortly',
      );
    }
  }

  private async projectOneBatch(): Promise<number> {
    const result = await this.sql.transaction(async (tx) => {
      const checkpoint = await readCheckpoint(tx, true);
      const events = await readEventsAfter(tx, checkpoint, BATCH_SIZE);
      if (events.length === 0) return null;
      const batch = await projectBatch(tx, LIVE_TABLES, events, this.catalog);
      await writeCheckpoint(tx, events[events.length - 1].position);
      return { events, batch };
    });
    if (!result) return 0;
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
    // State first, then the notable events: a page that hears "payment succeeded" can read the new state.
    for (const state of result.batch.changed) this.eventBus.publish(new CustomerStateChanged(state));
    const userIds = new Map(result.batch.changed.map((state) => [state.customerId, state.userId]));
    const outcomes = new Map(result.batch.outcomes.map((outcome) => [outcome.id, outcome]));
    for (const event of result.events) {
      const outcome = outcomes.get(event.id);
      const notable = outcome?.outcome === 'applied' && outcome.customerId ? notableEvent(event) : null;
      if (notable && outcome?.customerId) {
        this.eventBus.publish(
          new NotableEventProjected(outcome.customerId, userIds.get(outcome.customerId) ?? null, notable),
        );
      }
    }
    return result.events.length;
  }

  async lag(): Promise<{ checkpoint: number; behind: number }> {
    const checkpoint = await readCheckpoint(this.sql, false);
    return { checkpoint, behind: await eventsAfterCount(this.sql, checkpoint) };
  }
}
