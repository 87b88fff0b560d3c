import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The log becomes append-only in storage too: an event's projection outcome (SPEC section 3) moves from
 * its log row to a narrow row of its own, keyed by the event's position. Recording an outcome on the log
 * row rewrote the whole row with an entry in each of its eight indexes (the outcome was indexed, so the
 * update could never be HOT): a fifth of the WAL per webhook and most of the dead rows a busy log
 * collected (`npm run bench:profile`, and the soak without autovacuum, BENCHMARKS.md). An event with no
 * outcome row is `pending`; the projector writes the row in the transaction that moves its checkpoint
 * past the event, so every event at or before the checkpoint has one.
 *
 * The log's `outcome`, `reason` and `processed_at` columns stay, unused, for an instance of the previous
 * release during a rolling upgrade; what such an instance projects in that window shows as `pending` until
 * the next replay (`paywire replay`) decides it again. A later release drops them.
 */
export class EventOutcomes1763900900000 implements MigrationInterface {
  name = 'EventOutcomes1763900900000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE stripe_event_outcomes (
        position     bigint PRIMARY KEY,
        outcome      text NOT NULL CHECK (outcome IN ('applied', 'stale', 'ignored', 'unlinked', 'failed')),
        reason       text,
        processed_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX stripe_event_outcomes_outcome ON stripe_event_outcomes (outcome, position)`,
    );
    await queryRunner.query(`
      INSERT INTO stripe_event_outcomes (position, outcome, reason, processed_at)
      SELECT position, outcome, reason, COALESCE(processed_at, received_at) FROM stripe_events
       WHERE outcome <> 'pending'`);
    await queryRunner.query(`DROP INDEX stripe_events_outcome`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      UPDATE stripe_events e SET outcome = o.outcome, reason = o.reason, processed_at = o.processed_at
        FROM stripe_event_outcomes o WHERE o.position = e.position`);
    await queryRunner.query(`CREATE INDEX stripe_events_outcome ON stripe_events (outcome, position)`);
    await queryRunner.query(`DROP TABLE stripe_event_outcomes`);
  }
}
