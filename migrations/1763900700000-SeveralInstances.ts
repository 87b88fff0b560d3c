import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Several instances on one database (SPEC section 9). `billing_feed` is what every instance pushes to its
 * own MQTT subscribers, whichever instance projected it: each batch of the projector writes, in its
 * transaction, the new state of every customer it changed and then the notable events it applied, keyed
 * by the batch's head position and a sequence number, so a follower that reads in key order gets every
 * committed state in version order, each batch's states before its notable events, and never a row of an
 * uncommitted batch (the batch's checkpoint commits with it). Rows are kept for minutes: they are for
 * subscribers connected now; a retained state is read from `billing_customers`. `generation` counts
 * replays: a swap of rebuilt tables moves it, and every instance then pushes the rebuilt states. Replays
 * are rows, readable and cancellable from any instance.
 */
export class SeveralInstances1763900700000 implements MigrationInterface {
  name = 'SeveralInstances1763900700000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE billing_feed (
        batch       bigint NOT NULL,
        seq         integer NOT NULL,
        kind        text NOT NULL CHECK (kind IN ('state', 'event')),
        customer_id text NOT NULL,
        user_id     text,
        payload     jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (batch, seq)
      )`);
    await queryRunner.query(
      `ALTER TABLE projector_checkpoints ADD COLUMN generation bigint NOT NULL DEFAULT 0`,
    );
    await queryRunner.query(`
      CREATE TABLE projection_replays (
        id               text PRIMARY KEY,
        state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed', 'canceled')),
        processed        bigint NOT NULL DEFAULT 0,
        total            bigint NOT NULL DEFAULT 0,
        owner            text NOT NULL,
        heartbeat_at     timestamptz NOT NULL DEFAULT now(),
        cancel_requested boolean NOT NULL DEFAULT false,
        started_at       timestamptz NOT NULL DEFAULT now(),
        finished_at      timestamptz
      )`);
    // One replay at a time, whichever instance starts it.
    await queryRunner.query(
      `CREATE UNIQUE INDEX projection_replays_one_running ON projection_replays ((true)) WHERE state = 'running'`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE projection_replays`);
    await queryRunner.query(`ALTER TABLE projector_checkpoints DROP COLUMN generation`);
    await queryRunner.query(`DROP TABLE billing_feed`);
  }
}
