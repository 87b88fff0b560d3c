import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The log's append lock, as in the first migration (a migration keeps its own copy of what it relies on). */
const APPEND_LOCK = 0x5061_7977;

/**
 * The append function takes a batch's payloads and fold inputs as two JSON arrays instead of two `text[]`:
 * each verified body is already JSON, so the batch's array is the bodies joined with commas, where a
 * `text[]` made `pg` escape every quote of every ~4 KB body and PostgreSQL unescape it again before
 * parsing it as `jsonb` (`npm run bench:profile`, BENCHMARKS.md). The previous signatures stay for an
 * instance of the previous release during a rolling upgrade.
 */
export class AppendDocuments1763900800000 implements MigrationInterface {
  name = 'AppendDocuments1763900800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION paywire_append_events(
        ids text[], types text[], createds bigint[], livemodes boolean[], api_versions text[], accounts text[],
        customer_ids text[], object_ids text[], refs text[], bodies jsonb, fold_inputs jsonb,
        fold_input_version smallint, sources text[]
      ) RETURNS TABLE (event_id text, event_position bigint) LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(${APPEND_LOCK});
        RETURN QUERY
          INSERT INTO stripe_events AS s (id, type, created, livemode, api_version, account, customer_id, object_id, refs,
                                          payload, fold_input, fold_input_version, source)
          SELECT e.id, e.type, to_timestamp(e.created), e.livemode, e.api_version, e.account, e.customer_id, e.object_id,
                 CASE WHEN e.refs = '' THEN NULL ELSE string_to_array(e.refs, ',') END, bodies -> (e.ord::int - 1),
                 fold_inputs -> (e.ord::int - 1), fold_input_version, e.source
            FROM unnest(ids, types, createds, livemodes, api_versions, accounts, customer_ids, object_ids, refs, sources)
                 WITH ORDINALITY AS e(id, type, created, livemode, api_version, account, customer_id, object_id, refs,
                                      source, ord)
           ORDER BY e.ord
          ON CONFLICT (id) DO NOTHING
          RETURNING s.id, s.position;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP FUNCTION paywire_append_events(text[], text[], bigint[], boolean[], text[], text[], text[], text[], text[], jsonb, jsonb, smallint, text[])`,
    );
  }
}
