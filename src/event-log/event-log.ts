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
 * follows `position` cannot skip an event that commits late.
 */
import type { EventSource } from '../billing/event-types.js';
import { FOLD_INPUT_VERSION } from '../billing/fold-input.js';
import type { Sql, SqlExecutor } from '../database/database.js';

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

const MAX_BATCH = 500;

export class EventLog {
  private pending: PendingAppend[] = [];
  private flushing = false;
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly sql: Sql) {}

  /** Called after each commit that stored at least one new event. */
  onAppended(listener: () => void): void {
    this.listeners.push(listener);
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
    try {
      stored = await insertEvents(this.sql, uniqueEvents(batch));
    } catch (error) {
      if (batch.length === 1 || !isDataException(error)) {
        for (const append of batch) append.reject(error);
        return;
      }
      // One bad row (say, a payload PostgreSQL's jsonb refuses) must not fail its neighbours: retry alone.
      for (const append of batch) await this.commitBatch([append]);
      return;
    }
    const answered = new Set<string>();
    for (const { event, resolve } of batch) {
      const position = stored.get(event.id);
      const first = position !== undefined && !answered.has(event.id);
      answered.add(event.id);
      resolve(first ? { duplicate: false, position } : { duplicate: true, position: null });
    }
    if (stored.size > 0) for (const listener of this.listeners) listener();
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
