/**
 * The change feed (SPEC sections 6 and 9): every instance publishes to its own MQTT subscribers what the
 * projector committed, whichever instance projected it, by following `billing_feed` in key order — every
 * committed state of a customer in version order, each batch's states before its notable events. A
 * database notification (`LISTEN paywire_projection`, sent at each commit) wakes it at once, this
 * instance's own projector wakes it without the round trip, and it also looks every second, so a missed
 * notification delays a push by a second at most and loses nothing. One instance takes the same path.
 * The local projector's batch that follows on from what this feed has handed on is published from the
 * rows the projector wrote, without reading them back: on the projecting instance a batch reaches the
 * broker a round trip sooner (`npm run bench:push`, acknowledged → broker). Any other batch is read: a
 * wake-up that names a checkpoint this feed has already read through (the notification of a batch the
 * local projector announced first) costs no read, and a pass reads the checkpoint with each page, so a
 * batch costs another instance's feed one round trip. On the projecting instance a notification that
 * arrives before the local projector's own answer waits for it, briefly (`notified`).
 * When a replay swaps rebuilt tables in (the checkpoint's `generation` moves), it pushes every state
 * again, a page at a time, from the same loop, so no rebuilt state overtakes a later live one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventBus, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import type { BillingState } from '../billing/billing-state.js';
import type { NotableEvent } from '../billing/notable.js';
import { SQL, type Sql, type SqlSession } from '../database/database.js';
import { Logger } from '../logging/logger.js';
import { BillingProjector } from '../projections/billing.projector.js';
import { CoalescedPasses } from '../projections/coalesced-passes.js';
import { CustomerStateQuery } from '../projections/customer-state.query.js';
import { PROJECTION_CHANNEL, parseFeedHead, readFeedHead } from '../projections/projection-store.js';
import { CustomerStateChanged, NotableEventProjected, ProjectionCommitted } from '../projections/messages.js';

const PAGE = 1000;
/** Past every row of a batch (`seq` is an integer column). */
const AFTER_BATCH = 2 ** 31 - 1;
const SAFETY_INTERVAL_MS = 1000;
const REPUBLISH_PAGE = 200;
/** How long a notification waits for the local projector's answer before the feed reads its batch. */
const LOCAL_ANSWER_GRACE_MS = 50;

interface FeedRow {
  batch: string;
  seq: number;
  kind: 'state' | 'event';
  customer_id: string;
  user_id: string | null;
  payload: unknown;
}

/** A page of the feed after a cursor, with the checkpoint it was read under (one row without a page). */
type FeedPageRow = { head: string; generation: string } & ({ batch: null } | FeedRow);

@Injectable()
export class StateFeed implements OnApplicationBootstrap, OnApplicationShutdown {
  private cursor = { batch: 0, seq: 0 };
  private generation = 0;
  private listening: SqlSession | null = null;
  private readonly passes = new CoalescedPasses(
    () => this.follow(),
    (error) =>
      this.logger.warn({ err: { message: (error as Error).message } }, 'change feed pass failed; retrying'),
  );
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  /** A pass must read (a timer or an unspecific wake-up), or read up to `wanted`. */
  private mustRead = false;
  private wanted = 0;
  /** The local projector's latest batch, until a pass hands it on or finds it already read. */
  private localBatch: ProjectionCommitted | undefined;
  /** A notified batch is read when this fires, unless the local projector's answer handed it on first. */
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    @Inject(SQL) private readonly sql: Sql,
    private readonly projector: BillingProjector,
    private readonly states: CustomerStateQuery,
    private readonly eventBus: EventBus,
    private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // From the head on: what was committed before is what a subscriber's retained read returns.
    const head = await readFeedHead(this.sql);
    this.cursor = { batch: head.position, seq: AFTER_BATCH };
    this.generation = head.generation;
    await this.listen();
    this.timer = setInterval(() => {
      if (!this.listening) void this.listen();
      this.wake();
    }, SAFETY_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    await this.passes.idle();
    await this.listening?.release();
  }

  /** Asks for a pass that reads; calls that arrive while one runs coalesce into one more. */
  wake(): void {
    this.mustRead = true;
    if (!this.stopped) this.passes.wake();
  }

  /**
   * Asks for a pass up to the checkpoint `position` (of `generation`, for a notification). It reads only
   * if it is still needed when it runs: the local projector's wake-up and the database's notification of
   * the same batch often both arrive while the first pass is reading it.
   */
  private wakeFor(position: number, generation = this.generation): void {
    if (generation !== this.generation) return this.wake();
    if (position <= this.readThrough()) return;
    this.wanted = Math.max(this.wanted, position);
    if (!this.stopped) this.passes.wake();
  }

  /**
   * The database's notification of a checkpoint. On the projecting instance it is of a batch the local
   * projector committed, whose rows `committedHere` is about to hand on: the notification and the commit's
   * answer race over two connections, and the notification won for about a third of the batches, each
   * then read back for nothing (`npm run bench:profile`, the feed's reads per event). So there the read
   * waits a moment for the answer; a batch the local projector will not announce (one whose answer was
   * lost with its connection, or a former leaseholder's last) is read when the moment is over.
   */
  notified(position: number, generation: number): void {
    if (generation !== this.generation || !this.projector.projecting)
      return this.wakeFor(position, generation);
    if (position <= this.readThrough()) return;
    this.wanted = Math.max(this.wanted, position);
    this.graceTimer ??= setTimeout(() => {
      this.graceTimer = null;
      if (!this.stopped) this.passes.wake();
    }, LOCAL_ANSWER_GRACE_MS);
  }

  /** The local projector committed a batch: its rows go out at once when they follow on from the cursor. */
  committedHere(commit: ProjectionCommitted): void {
    this.localBatch = commit;
    this.wakeFor(commit.head, commit.generation);
  }

  /** The checkpoint up to which every feed row has been handed on. */
  private readThrough(): number {
    return this.cursor.seq === AFTER_BATCH ? this.cursor.batch : this.cursor.batch - 1;
  }

  /** Resolves once everything committed so far has been handed to the broker. */
  idle(): Promise<void> {
    return this.passes.idle();
  }

  private async listen(): Promise<void> {
    try {
      const session = await this.sql.session();
      session.onNotification((_channel, payload) => {
        const head = parseFeedHead(payload);
        if (head) this.notified(head.position, head.generation);
        else this.wake();
      });
      session.onLost(() => {
        if (this.listening === session) this.listening = null;
      });
      await session.query(`LISTEN ${PROJECTION_CHANNEL}`);
      this.listening = session;
    } catch (error) {
      this.logger.warn({ err: { message: (error as Error).message } }, 'could not listen for projections');
    }
  }

  private async follow(): Promise<void> {
    const local = this.localBatch;
    this.localBatch = undefined;
    // Only the batch right after the cursor, at a batch's end, in the generation the feed is in: anything
    // else (a batch this feed missed, a replay's swap, a read that failed inside a batch, whose rows so far
    // went out) is read, so the order stays the feed's key order and no row goes out twice.
    if (
      local &&
      local.generation === this.generation &&
      this.cursor.seq === AFTER_BATCH &&
      local.previous === this.readThrough()
    ) {
      for (const row of local.rows) this.handOn(row.kind, row.customerId, row.userId, row.payload);
      this.cursor = { batch: local.head, seq: AFTER_BATCH };
    }
    if (!this.mustRead && this.wanted <= this.readThrough()) {
      if (this.graceTimer) clearTimeout(this.graceTimer);
      this.graceTimer = null;
      return;
    }
    this.mustRead = false;
    for (;;) {
      const rows = await this.sql.query<FeedPageRow>(
        `SELECT c.position AS head, c.generation, f.* FROM projector_checkpoints c
           LEFT JOIN LATERAL (
             SELECT batch, seq, kind, customer_id, user_id, payload FROM billing_feed
              WHERE (batch, seq) > ($1, $2) AND batch <= c.position ORDER BY batch, seq LIMIT $3) f ON true
          WHERE c.name = 'billing'`,
        [this.cursor.batch, this.cursor.seq, PAGE],
      );
      const head = Number(rows[0].head);
      const generation = Number(rows[0].generation);
      if (generation !== this.generation) {
        this.generation = generation;
        this.cursor = { batch: head, seq: AFTER_BATCH };
        await this.republishAll();
        return;
      }
      const page = rows.filter((row): row is FeedPageRow & FeedRow => row.batch !== null);
      for (const row of page) this.handOn(row.kind, row.customer_id, row.user_id, row.payload);
      if (page.length > 0) {
        const last = page[page.length - 1];
        this.cursor = { batch: Number(last.batch), seq: last.seq };
      }
      if (page.length < PAGE) {
        this.cursor = { batch: head, seq: AFTER_BATCH };
        return;
      }
    }
  }

  private handOn(kind: FeedRow['kind'], customerId: string, userId: string | null, payload: unknown): void {
    if (kind === 'state') this.eventBus.publish(new CustomerStateChanged(payload as BillingState));
    else this.eventBus.publish(new NotableEventProjected(customerId, userId, payload as NotableEvent));
  }

  /**
   * Every state again, after a replay: its subscribers' views may all have changed. It shares the process
   * with webhooks and perhaps the projector, so it rests twice as long as each page took: run flat out,
   * republishing multiplied the projection lag for as long as it ran (BENCHMARKS.md, replay).
   */
  private async republishAll(): Promise<void> {
    let after = '';
    for (;;) {
      const started = performance.now();
      const states = await this.states.page(after, REPUBLISH_PAGE);
      for (const state of states) this.eventBus.publish(new CustomerStateChanged(state));
      if (states.length < REPUBLISH_PAGE) return;
      after = states[states.length - 1].customerId;
      await sleep(2 * (performance.now() - started));
    }
  }
}

@EventsHandler(ProjectionCommitted)
export class FollowLocalCommits implements IEventHandler<ProjectionCommitted> {
  constructor(private readonly feed: StateFeed) {}

  handle(commit: ProjectionCommitted): void {
    this.feed.committedHere(commit);
  }
}
