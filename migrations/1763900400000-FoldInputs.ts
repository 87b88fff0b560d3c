import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The log's append lock, as in the first migration (a migration keeps its own copy of what it relies on). */
const APPEND_LOCK = 0x5061_7977;

/**
 * `fold_input`: the part of each payload the billing core reads (src/billing/fold-input.ts), written at
 * ingest so a replay stops parsing whole payloads, with the version of the cut that made it. Rows stored
 * before have none and are read whole until a replay refreshes them. The append function gains two
 * arguments; the old signature stays, so an instance still running the previous release keeps appending
 * during a rolling upgrade (its rows, too, are read whole).
 */
export class FoldInputs1763900400000 implements MigrationInterface {
  name = 'FoldInputs1763900400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE stripe_events ADD COLUMN fold_input jsonb, ADD COLUMN fold_input_version smallint`,
    );
    await queryRunner.query(`
      CREATE FUNCTION paywire_append_events(
        ids text[], types text[], createds bigint[], livemodes boolean[], api_versions text[], accounts text[],
        customer_ids text[], object_ids text[], refs text[], bodies text[], fold_inputs text[], fold_input_version smallint
      ) RETURNS TABLE (event_id text, event_position bigint) LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(${APPEND_LOCK});
        RETURN QUERY
          INSERT INTO stripe_events AS s (id, type, created, livemode, api_version, account, customer_id, object_id, refs,
                                          payload, fold_input, fold_input_version)
          SELECT e.id, e.type, to_timestamp(e.created), e.livemode, e.api_version, e.account, e.customer_id, e.object_id,
                 CASE WHEN e.refs = '' THEN NULL ELSE string_to_array(e.refs, ',') END, e.body::jsonb,
                 e.fold_input::jsonb, fold_input_version
            FROM unnest(ids, types, createds, livemodes, api_versions, accounts, customer_ids, object_ids, refs, bodies, fold_inputs)
                 WITH ORDINALITY AS e(id, type, created, livemode, api_version, account, customer_id, object_id, refs, body, fold_input, ord)
           ORDER BY e.ord
          ON CONFLICT (id) DO NOTHING
          RETURNING s.id, s.position;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP FUNCTION paywire_append_events(text[], text[], bigint[], boolean[], text[], text[], text[], text[], text[], text[], text[], smallint)`,
    );
    await queryRunner.query(
      `ALTER TABLE stripe_events DROP COLUMN fold_input, DROP COLUMN fold_input_version`,
    );
  }
}
