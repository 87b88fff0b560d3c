import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Projection tables: everything here can be rebuilt from `stripe_events` by a replay, which builds fresh
 * copies (`CREATE TABLE … (LIKE … INCLUDING ALL)`) and swaps them in with renames in one transaction.
 * `billing_customers.state` is the folded customer (billing core), `view` the payload users see.
 */
export class Projections1763900100000 implements MigrationInterface {
  name = 'Projections1763900100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE billing_customers (
        customer_id  text PRIMARY KEY,
        user_id      text,
        email        text,
        deleted      boolean NOT NULL DEFAULT false,
        state        jsonb NOT NULL,
        view         jsonb NOT NULL,
        version      bigint NOT NULL,
        updated_at   timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX billing_customers_user ON billing_customers (user_id, customer_id)`,
    );
    await queryRunner.query(
      `CREATE INDEX billing_customers_email ON billing_customers (lower(email), customer_id)`,
    );
    await queryRunner.query(`
      CREATE TABLE billing_subscriptions (
        subscription_id text PRIMARY KEY,
        customer_id     text NOT NULL,
        status          text NOT NULL,
        product_ids     text[] NOT NULL,
        view            jsonb NOT NULL
      )`);
    await queryRunner.query(
      `CREATE INDEX billing_subscriptions_customer ON billing_subscriptions (customer_id)`,
    );
    await queryRunner.query(
      `CREATE INDEX billing_subscriptions_status ON billing_subscriptions (status, subscription_id)`,
    );
    await queryRunner.query(
      `CREATE INDEX billing_subscriptions_products ON billing_subscriptions USING gin (product_ids)`,
    );
    await queryRunner.query(`
      CREATE TABLE billing_entitlements (
        customer_id text NOT NULL,
        feature     text NOT NULL,
        source      text NOT NULL,
        source_id   text NOT NULL,
        until       timestamptz,
        PRIMARY KEY (customer_id, feature, source, source_id)
      )`);
    await queryRunner.query(
      `CREATE INDEX billing_entitlements_feature ON billing_entitlements (feature, customer_id)`,
    );
    await queryRunner.query(`
      CREATE TABLE billing_products (
        product_id text PRIMARY KEY,
        features   text[] NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE billing_links (
        object_id   text PRIMARY KEY,
        customer_id text NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE billing_event_routes (
        event_id    text PRIMARY KEY,
        customer_id text NOT NULL
      )`);
    await queryRunner.query(
      `CREATE INDEX billing_event_routes_customer ON billing_event_routes (customer_id)`,
    );
    await queryRunner.query(`
      CREATE TABLE projector_checkpoints (
        name     text PRIMARY KEY,
        position bigint NOT NULL
      )`);
    await queryRunner.query(`INSERT INTO projector_checkpoints (name, position) VALUES ('billing', 0)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'projector_checkpoints',
      'billing_event_routes',
      'billing_links',
      'billing_products',
      'billing_entitlements',
      'billing_subscriptions',
      'billing_customers',
    ]) {
      await queryRunner.query(`DROP TABLE ${table}`);
    }
  }
}
