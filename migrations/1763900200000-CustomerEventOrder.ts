import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A customer's events newest first (the admin API's events page and trail) without sorting all of them:
 * the index of the first migration orders a customer's events by `created`, not by `position`.
 */
export class CustomerEventOrder1763900200000 implements MigrationInterface {
  name = 'CustomerEventOrder1763900200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX stripe_events_customer_position ON stripe_events (customer_id, position)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX stripe_events_customer_position`);
  }
}
