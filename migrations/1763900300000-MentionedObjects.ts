import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `refs` now lists the objects an event mentions whether or not it names its customer (links and
 * references alike), so a replay can plan every route from this column without reading payloads. Rows
 * stored before keep their meaning; this fills the column for the events that named a customer.
 */
export class MentionedObjects1763900300000 implements MigrationInterface {
  name = 'MentionedObjects1763900300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      UPDATE stripe_events e SET refs = m.ids
        FROM (
          SELECT id, array_agg(DISTINCT ref) FILTER (WHERE ref IS NOT NULL) AS ids
            FROM (
              SELECT id, unnest(ARRAY[
                CASE jsonb_typeof(o->'payment_intent') WHEN 'string' THEN o->>'payment_intent' WHEN 'object' THEN o->'payment_intent'->>'id' END,
                CASE jsonb_typeof(o->'charge') WHEN 'string' THEN o->>'charge' WHEN 'object' THEN o->'charge'->>'id' END,
                CASE jsonb_typeof(o->'invoice') WHEN 'string' THEN o->>'invoice' WHEN 'object' THEN o->'invoice'->>'id' END,
                CASE WHEN o->>'object' IN ('charge', 'payment_intent', 'invoice') THEN o->>'id' END
              ]) AS ref
                FROM (SELECT id, payload->'data'->'object' AS o FROM stripe_events WHERE customer_id IS NOT NULL AND refs IS NULL) s
            ) u
           GROUP BY id
        ) m
       WHERE e.id = m.id AND m.ids IS NOT NULL`);
  }

  async down(): Promise<void> {
    // The filled links are harmless to keep: the live projector reads links from payloads.
  }
}
