import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The append-only Stripe event log (SPEC section 3). `position` comes from a sequence taken while the
 * appender holds a transaction-scoped advisory lock, so positions become visible in increasing order and a
 * reader that follows `position` never skips a row that commits late. `customer_id`/`object_id` are
 * derived at ingest for the indexes, and `refs` (for an event that names no customer) lists the charges and
 * payment intents through which a link may route it to one; `payload` is the verified event exactly as Stripe signed it.
 */
export class EventLogSchema1763900000000 implements MigrationInterface {
  name = 'EventLogSchema1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE stripe_events (
        id           text PRIMARY KEY,
        position     bigserial NOT NULL UNIQUE,
        type         text NOT NULL,
        created      timestamptz NOT NULL,
        received_at  timestamptz NOT NULL DEFAULT now(),
        livemode     boolean NOT NULL DEFAULT false,
        api_version  text,
        account      text,
        customer_id  text,
        object_id    text,
        refs         text[],
        payload      jsonb NOT NULL,
        outcome      text NOT NULL DEFAULT 'pending'
                     CHECK (outcome IN ('pending', 'applied', 'stale', 'ignored', 'unlinked', 'failed')),
        reason       text,
        processed_at timestamptz
      )`);
    await queryRunner.query(
      `CREATE INDEX stripe_events_customer ON stripe_events (customer_id, created, position)`,
    );
    await queryRunner.query(
      `CREATE INDEX stripe_events_object ON stripe_events (object_id, created, position)`,
    );
    await queryRunner.query(`CREATE INDEX stripe_events_type ON stripe_events (type, position)`);
    await queryRunner.query(`CREATE INDEX stripe_events_created ON stripe_events (created, position)`);
    await queryRunner.query(`CREATE INDEX stripe_events_outcome ON stripe_events (outcome, position)`);
    await queryRunner.query(
      `CREATE INDEX stripe_events_refs ON stripe_events USING gin (refs) WHERE customer_id IS NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE stripe_events`);
  }
}
