/**
 * Retained billing states come from the projections, not from the broker's memory (SPEC sections 6 and
 * 9). Aedes's memory persistence keeps everything else (sessions, subscriptions, in-flight packets), but
 * a retained `…/state` message is never stored: when a client subscribes, its state topics are answered
 * from `billing_customers` — an exact topic with one indexed read, a wildcard (an admin's `billing/#`) a
 * page at a time — so no instance holds a copy of every state, nothing is republished at start, and every
 * instance answers with what the projector committed, whichever instance that was.
 */
import { Readable } from 'node:stream';
import aedesPersistence, { type AedesMemoryPersistence, type Packet } from 'aedes-persistence';
import type { Sql } from '../database/database.js';

// A CommonJS package whose `module.exports` is the factory, declared as its default export: under Node's
// ESM interop the default import is the factory itself (as Aedes imports it).
const memory = aedesPersistence as unknown as () => AedesMemoryPersistence;
type Persistence = AedesMemoryPersistence;
type RetainedPacket = { cmd: 'publish'; topic: string; payload: Buffer; qos: 1; retain: true };

const STATE_TOPIC = /^billing\/(customers|users)\/([^/]+)\/state$/;
const PAGE = 500;

/** MQTT topic matching: `+` is one level, `#` the rest (MQTT 3.1.1 section 4.7). */
export function topicMatches(pattern: string, topic: string): boolean {
  const wanted = pattern.split('/');
  const levels = topic.split('/');
  for (let i = 0; i < wanted.length; i++) {
    if (wanted[i] === '#') return true;
    if (i >= levels.length || (wanted[i] !== '+' && wanted[i] !== levels[i])) return false;
  }
  return wanted.length === levels.length;
}

/** Can `pattern` reach a state topic? Then the projections answer it. */
function reachesStates(pattern: string): boolean {
  return topicMatches(pattern, 'billing/customers/x/state') || topicMatches(pattern, 'billing/users/x/state');
}

const packet = (topic: string, view: unknown): RetainedPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(JSON.stringify(view)),
  qos: 1,
  retain: true,
});

export function retainedStatesFrom(sql: Sql): Persistence {
  const persistence = memory();
  const storeRetained = persistence.storeRetained.bind(persistence);
  const retainedStream = persistence.createRetainedStreamCombi.bind(persistence);

  async function* exact(family: string, id: string): AsyncGenerator<RetainedPacket> {
    // A user with several customers is shown the one whose state changed last, as the live topic does.
    const [row] =
      family === 'customers'
        ? await sql.query<{ view: unknown }>(`SELECT view FROM billing_customers WHERE customer_id = $1`, [
            id,
          ])
        : await sql.query<{ view: unknown }>(
            `SELECT view FROM billing_customers WHERE user_id = $1 ORDER BY updated_at DESC LIMIT 1`,
            [id],
          );
    if (row) yield packet(`billing/${family}/${id}/state`, row.view);
  }

  async function* everyState(pattern: string): AsyncGenerator<RetainedPacket> {
    let after = '';
    for (;;) {
      const rows = await sql.query<{ customer_id: string; user_id: string | null; view: unknown }>(
        `SELECT customer_id, user_id, view FROM billing_customers WHERE customer_id > $1 ORDER BY customer_id LIMIT $2`,
        [after, PAGE],
      );
      for (const row of rows) {
        const topics = [`billing/customers/${row.customer_id}/state`];
        if (row.user_id) topics.push(`billing/users/${row.user_id}/state`);
        for (const topic of topics) if (topicMatches(pattern, topic)) yield packet(topic, row.view);
      }
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1].customer_id;
    }
  }

  async function* answer(patterns: string[]): AsyncGenerator<unknown> {
    const others = patterns.filter((pattern) => !STATE_TOPIC.test(pattern));
    for (const pattern of patterns) {
      const match = STATE_TOPIC.exec(pattern);
      if (match && !match[2].includes('+') && !match[2].includes('#')) yield* exact(match[1], match[2]);
      else if (reachesStates(pattern)) yield* everyState(pattern);
    }
    // Whatever else is retained (nothing Paywire publishes) stays with the memory persistence.
    if (others.length > 0) yield* retainedStream(others);
  }

  return Object.assign(persistence, {
    // Aedes 1.2 calls it without a callback and awaits the promise the memory persistence then returns.
    storeRetained: (message: Packet, done?: (error: Error | null) => void) => {
      if ('topic' in message && STATE_TOPIC.test(message.topic)) return done ? done(null) : Promise.resolve();
      return storeRetained(message, done as never);
    },
    createRetainedStreamCombi: (patterns: string[]) => Readable.from(answer(patterns)),
    createRetainedStream: (pattern: string) => Readable.from(answer([pattern])),
  }) as Persistence;
}
