import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The log's append lock, as in the first migration (a migration keeps its own copy of what it relies on). */
const APPEND_LOCK = 0x5061_7977;

/**
 * Completeness against Stripe's API (SPEC section 8). The append function gains `sources`, so events
 * fetched by backfill and gap healing (`api`) and reconcile's snapshots (`reconcile`) go through the same
 * locked, idempotent insert as webhooks; the previous signature stays for an instance of the previous
 * release during a rolling upgrade (its rows keep the `webhook` default). Backfill and gap-healing runs are
 * rows, so a job outlives the process that started it: `cursor` is the `created` second below which every
 * event Stripe listed is in the log, which is where a killed job resumes; `owner` and `heartbeat_at` say
 * who runs it and whether that one still lives. A unique index admits one running gap-healing row, which is
the lock that keeps healing to one instance at a time.
 */
export class Completeness1763900600000 implements MigrationInterface {
  name = 'Completeness1763900600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION paywire_append_events(
        ids text[], types text[], createds bigint[], livemodes boolean[], api_versions text[], accounts text[],
        customer_ids text[], object_ids text[], refs text[], bodies text[], fold_inputs text[], fold_input_version smallint,
        sources text[]
      ) RETURNS TABLE (event_id text, event_position bigint) LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(${APPEND_LOCK});
        RETURN QUERY
          INSERT INTO stripe_events AS s (id, type, created, livemode, api_version, account, customer_id, object_id, refs,
                                          payload, fold_input, fold_input_version, source)
          SELECT e.id, e.type, to_timestamp(e.created), e.livemode, e.api_version, e.account, e.customer_id, e.object_id,
                 CASE WHEN e.refs = '' THEN NULL ELSE string_to_array(e.refs, ',') END, e.body::jsonb,
                 e.fold_input::jsonb, fold_input_version, e.source
            FROM unnest(ids, types, createds, livemodes, api_versions, accounts, customer_ids, object_ids, refs, bodies,
                        fold_inputs, sources)
                 WITH ORDINALITY AS e(id, type, created, livemode, api_version, account, customer_id, object_id, refs, body,
                                      fold_input, source, ord)
           ORDER BY e.ord
          ON CONFLICT (id) DO NOTHING
          RETURNING s.id, s.position;
      END $$`);
    await queryRunner.query(`
      CREATE TABLE stripe_sync_jobs (
        id           text PRIMARY KEY,
        kind         text NOT NULL CHECK (kind IN ('backfill', 'heal')),
        state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
        since        bigint NOT NULL,
        cursor       bigint NOT NULL,
        fetched      bigint NOT NULL DEFAULT 0,
        stored       bigint NOT NULL DEFAULT 0,
        duplicates   bigint NOT NULL DEFAULT 0,
        error        text,
        owner        text,
        heartbeat_at timestamptz,
        started_at   timestamptz NOT NULL DEFAULT now(),
        finished_at  timestamptz
      )`);
    await queryRunner.query(
      `CREATE INDEX stripe_sync_jobs_running ON stripe_sync_jobs (kind, started_at) WHERE state = 'running'`,
    );
    // Gap healing runs on one instance at a time: a second running heal row cannot be inserted.
    await queryRunner.query(
      `CREATE UNIQUE INDEX stripe_sync_jobs_one_heal ON stripe_sync_jobs (kind) WHERE state = 'running' AND kind = 'heal'`,
    );
    await queryRunner.query(
      `CREATE INDEX stripe_sync_jobs_finished ON stripe_sync_jobs (kind, state, finished_at)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE stripe_sync_jobs`);
    await queryRunner.query(
      `DROP FUNCTION paywire_append_events(text[], text[], bigint[], boolean[], text[], text[], text[], text[], text[], text[], text[], smallint, text[])`,
    );
  }
}
