import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Any constant shared by every Paywire instance on the database; it names the log's append lock. */
const APPEND_LOCK = 0x5061_7977;

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
    // One statement per batch: called outside an explicit transaction, the call is its own transaction, so
    // the advisory lock is held from before the positions are drawn until after the commit, in one round
    // trip to the server.
    await queryRunner.query(`
      CREATE FUNCTION paywire_append_events(
        ids text[], types text[], createds bigint[], livemodes boolean[], api_versions text[], accounts text[],
        customer_ids text[], object_ids text[], refs text[], bodies text[]
      ) RETURNS TABLE (event_id text, event_position bigint) LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(${APPEND_LOCK});
        RETURN QUERY
          INSERT INTO stripe_events AS s (id, type, created, livemode, api_version, account, customer_id, object_id, refs, payload)
          SELECT e.id, e.type, to_timestamp(e.created), e.livemode, e.api_version, e.account, e.customer_id, e.object_id,
                 CASE WHEN e.refs = '' THEN NULL ELSE string_to_array(e.refs, ',') END, e.body::jsonb
            FROM unnest(ids, types, createds, livemodes, api_versions, accounts, customer_ids, object_ids, refs, bodies)
                 WITH ORDINALITY AS e(id, type, created, livemode, api_version, account, customer_id, object_id, refs, body, ord)
           ORDER BY e.ord
          ON CONFLICT (id) DO NOTHING
          RETURNING s.id, s.position;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION paywire_append_events`);
    await queryRunner.query(`DROP TABLE stripe_events`);
  }
}
