import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `source` (SPEC section 3): how an event reached the log. Every row so far came by webhook, and the
 * constant default makes the new column free to add on a large log (PostgreSQL stores it in the catalog,
 * not in each row); the append functions keep working unchanged and store webhooks. `api` (backfill, gap
 * healing) and `reconcile` (snapshots) are what fetching from Stripe's API will write.
 */
export class EventSources1763900500000 implements MigrationInterface {
  name = 'EventSources1763900500000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE stripe_events ADD COLUMN source text NOT NULL DEFAULT 'webhook'
         CONSTRAINT stripe_events_source CHECK (source IN ('webhook', 'api', 'reconcile'))`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE stripe_events DROP COLUMN source`);
  }
}
