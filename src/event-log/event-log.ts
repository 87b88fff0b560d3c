/**
 * The append-only Stripe event log (SPEC section 3). `appendEvent` resolves only after the event's row is
 * committed, so the webhook can answer 200 knowing the event is durable; a duplicate id resolves as
 * `duplicate: true` and never makes a second row.
 *
 * Appends are group-committed: one transaction at a time writes every event that arrived while the
 * previous one was committing, in one `INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING`. That costs a
 * lone event nothing (it is flushed at once) and turns 64 concurrent deliveries into a handful of
 * commits. Each batch takes a transaction-scoped advisory lock before drawing positions from the sequence,
 * so positions become visible in increasing order even with several Paywire instances, and a reader that
 * follows `position` cannot skip an event that commits late. When the projector is ready for it
 * (`projectInline`), the same transaction projects the batch before it commits.
 */
import type { EventSource } from '../billing/event-types.js';
import { FOLD_INPUT_VERSION } from '../billing/fold-input.js';
import type { Sql, SqlExecutor, SqlTransaction } from '../database/database.js';

export interface EventToAppend {
  id: string;
  type: string;
  /** `event.created`, seconds since the epoch. */
  created: number;
  livemode: boolean;
  apiVersion: string | null;
  account: string | null;
  customerId: string | null;
  objectId: string | null;
  /**
   * The charges, payment intents and invoices the event mentions: links when it names its customer, the
   * objects through which a link may route it to one when it does not.
   */
  refs: string[];
  /** The verified request body, stored as the `payload` jsonb. */
  body: string;
  /** The JSON of the payload's fold input (billing/fold-input.ts), cut with FOLD_INPUT_VERSION. */
  foldInput: string;
  /** How it reached Paywire; the first route to store an id is the one recorded. */
  source: EventSource;
}

export interface AppendResult {
  duplicate: boolean;
  /** The event's log position when this call stored it; null for a duplicate. */
  position: number | null;
}

interface PendingAppend {
  event: EventToAppend;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

/** What a projection run inside an append's transaction did (`projectInline`). */
export interface InlineProjection {
  /** Called once the append's transaction has committed. */
  committed(): void;
  /** Whether it projected everything stored so far, so that no wake-up is due. */
  complete: boolean;
}

/** A projection that an append's transaction runs after its rows (`EventLog.projectInline`). */
export interface InlineProjector {
  /** Whether to try now; if not, the append is its own one-statement transaction, as without it. */
  ready(): boolean;
  /** May end the transaction itself (`queryAndCommit`); null when it projected nothing. */
  project(tx: SqlTransaction): Promise<InlineProjection | null>;
}

const MAX_BATCH = 500;

export class EventLog {
  private pending: PendingAppend[] = [];
  private flushing = false;
  private readonly listeners: Array<() => void> = [];
  private inline: InlineProjector | null = null;

  constructor(private readonly sql: Sql) {}

  /** Called after each commit that stored at least one new event, unless it was projected in full. */
  onAppended(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Runs `projector` in each append's transaction that it is ready for, after the rows are written. If
   * anything in that transaction fails, the events are appended again on their own, as without it: a
   * projection's failure never costs an append.
   */
  projectInline(projector: InlineProjector): void {
    this.inline = projector;
  }

  appendEvent(event: EventToAppend): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ event, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH);
        await this.commitBatch(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async commitBatch(batch: PendingAppend[]): Promise<void> {
    let stored: Map<string, number>;
    let projection: InlineProjection | null;
    try {
      ({ stored, projection } = await this.store(uniqueEvents(batch)));
    } catch (error) {
      if (batch.length === 1 || !isDataException(error)) {
        for (const append of batch) append.reject(error);
        return;
      }
      // One bad row (say, a payload PostgreSQL's jsonb refuses) must not fail its neighbours: retry alone.
      for (const append of batch) await this.commitBatch([append]);
      return;
    }
    projection?.committed();
    const answered = new Set<string>();
    for (const { event, resolve } of batch) {
      const position = stored.get(event.id);
      const first = position !== undefined && !answered.has(event.id);
      answered.add(event.id);
      resolve(first ? { duplicate: false, position } : { duplicate: true, position: null });
    }
    if (stored.size > 0 && !projection?.complete) for (const listener of this.listeners) listener();
  }

  private async store(
    events: EventToAppend[],
  ): Promise<{ stored: Map<string, number>; projection: InlineProjection | null }> {
    const inline = this.inline;
    if (inline?.ready()) {
      try {
        return await this.sql.transaction(async (tx) => {
          const stored = await insertEvents(tx, events);
          return { stored, projection: stored.size > 0 ? await inline.project(tx) : null };
        });
      } catch {
        // Whatever failed (the projection, or a row the statement below refuses as well), the events are
        // appended as they would be without it; the projector takes them from there.
      }
    }
    return { stored: await insertEvents(this.sql, events), projection: null };
  }
}

/** SQLSTATE class 22: the row itself is bad, not the database. */
function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('22');
}

function uniqueEvents(batch: PendingAppend[]): EventToAppend[] {
  const byId = new Map<string, EventToAppend>();
  for (const { event } of batch) if (!byId.has(event.id)) byId.set(event.id, event);
  return [...byId.values()];
}

/**
 * One round trip: `paywire_append_events` (see the migrations) locks, inserts and commits. The bodies and
 * fold inputs travel as two JSON arrays made by joining their texts: each is JSON already (the body was
 * parsed by the signature check), and a `text[]` would escape and unescape every quote in them.
 */
async function insertEvents(db: SqlExecutor, events: EventToAppend[]): Promise<Map<string, number>> {
  const rows = await db.query<{ event_id: string; event_position: string | number }>(
    `SELECT event_id, event_position FROM paywire_append_events(
       $1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
       $10::jsonb, $11::jsonb, $12::smallint, $13::text[])`,
    [
      events.map((e) => e.id),
      events.map((e) => e.type),
      events.map((e) => e.created),
      events.map((e) => e.livemode),
      events.map((e) => e.apiVersion),
      events.map((e) => e.account),
      events.map((e) => e.customerId),
      events.map((e) => e.objectId),
      events.map((e) => e.refs.join(',')),
      `[${events.map((e) => e.body).join(',')}]`,
      `[${events.map((e) => e.foldInput).join(',')}]`,
      FOLD_INPUT_VERSION,
      events.map((e) => e.source),
    ],
  );
  return new Map(rows.map((row) => [row.event_id, Number(row.event_position)]));
}
