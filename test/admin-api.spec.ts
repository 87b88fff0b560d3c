/**
 * The admin API over real HTTP (SPEC section 4): every list and its filters, keyset pagination while
 * events keep arriving, auth, validation, 404s, the OpenAPI document, Prometheus metrics and the logs.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { pino } from 'pino';
import { ADMIN_KEY, WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';
import { sendEvent, sign, stripeEvent, subscriptionEvent, uid } from './support/stripe.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The answers are read field by field; one loose type keeps the assertions short.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

let db: TestDatabase;
let app: RunningApp;
const logLines: string[] = [];
const alice = uid('cus');
const bob = uid('cus');

const get = async (path: string, key: string | null = ADMIN_KEY) => {
  const response = await fetch(`${app.url}${path}`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as Loose };
};

beforeAll(async () => {
  db = await createTestDatabase();
  const catalogFile = join(db.dataDir, 'catalog.json');
  writeFileSync(catalogFile, JSON.stringify({ prices: { price_pro: ['pro'], price_team: ['pro', 'team'] } }));
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  app = await startApp(db, { CATALOG_FILE: catalogFile }, { logger: pino({ level: 'debug' }, sink) });
  await app.deliverFolded(
    stripeEvent(
      'customer.created',
      { id: alice, object: 'customer', email: 'Alice@Example.com', metadata: { userId: 'user_alice' } },
      { created: 1_790_000_000 },
    ),
    stripeEvent(
      'customer.created',
      { id: bob, object: 'customer', email: 'bob@example.com', metadata: { userId: 'user_bob' } },
      { created: 1_790_000_000 },
    ),
    subscriptionEvent(alice, { status: 'active', price: 'price_team', created: 1_790_000_010 }),
    subscriptionEvent(bob, { status: 'past_due', price: 'price_pro', created: 1_790_000_020 }),
    stripeEvent(
      'invoice.payment_failed',
      { id: uid('in'), object: 'invoice', customer: bob, status: 'open' },
      { created: 1_790_000_030 },
    ),
  );
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('lists and filters', () => {
  it('finds customers by email (any case) and by userId', async () => {
    expect(
      (await get('/admin/customers?email=alice@example.com')).body.data.map(
        (c: { customerId: string }) => c.customerId,
      ),
    ).toEqual([alice]);
    expect((await get('/admin/customers?userId=user_bob')).body.data).toMatchObject([
      { customerId: bob, payment: { status: 'past_due' } },
    ]);
  });

  it('lists subscriptions by status and by customer', async () => {
    expect((await get('/admin/subscriptions?status=past_due')).body.data).toMatchObject([
      { id: `sub_${bob}`, customerId: bob },
    ]);
    expect((await get(`/admin/subscriptions?customerId=${alice}`)).body.data).toMatchObject([
      { status: 'active' },
    ]);
  });

  it('says who holds which feature', async () => {
    const team = (await get('/admin/entitlements?feature=team')).body.data;
    expect(team).toEqual([
      { customerId: alice, feature: 'team', source: 'subscription', sourceId: `sub_${alice}`, until: null },
    ]);
    expect(
      (await get(`/admin/entitlements?customerId=${alice}`)).body.data.map(
        (e: { feature: string }) => e.feature,
      ),
    ).toEqual(['pro', 'team']);
    expect((await get(`/admin/entitlements?customerId=${bob}`)).body.data).toEqual([]);
  });

  it('filters log rows by type, customer, outcome and time', async () => {
    expect((await get('/admin/events?type=invoice.payment_failed')).body.data).toMatchObject([
      { customerId: bob, outcome: 'applied' },
    ]);
    const bobs = (await get(`/admin/events?customerId=${bob}`)).body.data;
    expect(bobs.map((e: { type: string }) => e.type)).toEqual([
      'invoice.payment_failed',
      'customer.subscription.created',
      'customer.created',
    ]);
    expect((await get(`/admin/events?customerId=${alice}&outcome=ignored`)).body.data).toEqual([]);
    const window = (await get('/admin/events?since=2026-09-21T14:13:25Z&until=2026-09-21T14:13:50Z')).body
      .data;
    expect(window.map((e: { type: string }) => e.type).sort()).toEqual([
      'customer.subscription.created',
      'customer.subscription.created',
      'invoice.payment_failed',
    ]);
  });

  // Holding the checkpoint row's lock keeps the projector from the event; PGlite is one session.
  (serverUrl ? it : it.skip)(
    'shows an event the projector has not reached as pending, and finds it by its outcome',
    async () => {
      const holder = new pg.Client({ connectionString: db.url! });
      await holder.connect();
      const carol = uid('cus');
      const created = stripeEvent(
        'customer.created',
        { id: carol, object: 'customer', email: 'carol@example.com', metadata: {} },
        { created: 1_790_000_100 },
      );
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT position FROM projector_checkpoints WHERE name = 'billing' FOR UPDATE`);
        expect((await sendEvent(app.url, created, WEBHOOK_SECRET)).status).toBe(200);
        expect((await get(`/admin/events/${created.id}`)).body.outcome).toBe('pending');
        const pending = (await get('/admin/events?outcome=pending')).body.data;
        expect(pending.map((e: { id: string }) => e.id)).toEqual([created.id]);
      } finally {
        await holder.query('ROLLBACK');
        await holder.end();
      }
      await app.settle();
      expect((await get(`/admin/events/${created.id}`)).body.outcome).toBe('applied');
      expect((await get('/admin/events?outcome=pending')).body.data).toEqual([]);
      const applied = (await get('/admin/events?outcome=applied&limit=1')).body.data;
      expect(applied.map((e: { id: string }) => e.id)).toEqual([created.id]);
    },
  );

  it('says how each event reached the log, and filters by it', async () => {
    const bobs = (await get(`/admin/events?customerId=${bob}&source=webhook`)).body.data;
    expect(bobs).toHaveLength(3);
    expect(bobs.every((e: { source: string }) => e.source === 'webhook')).toBe(true);
    expect((await get(`/admin/events?customerId=${bob}&source=api`)).body.data).toEqual([]);
    expect((await get(`/admin/events/${bobs[0].id}`)).body.source).toBe('webhook');
    expect(await get('/admin/events?source=email')).toEqual({
      status: 400,
      body: { error: 'invalid_parameter', parameter: 'source' },
    });
  });

  it("shows a customer's trail in fold order with outcomes, and one event with its payload", async () => {
    const trail = (await get(`/admin/customers/${alice}/events`)).body.data;
    expect(trail.map((e: { type: string; outcome: string }) => [e.type, e.outcome])).toEqual([
      ['customer.created', 'applied'],
      ['customer.subscription.created', 'applied'],
    ]);
    const one = (await get(`/admin/events/${trail[0].id}`)).body;
    expect(one).toMatchObject({
      id: trail[0].id,
      type: 'customer.created',
      customerId: alice,
      outcome: 'applied',
      payload: { id: trail[0].id },
    });
  });
});

it("shows an event routed to the customer through a link in the customer's trail", async () => {
  const carol = uid('cus');
  const paymentIntent = uid('pi');
  await app.deliverFolded(
    stripeEvent('customer.created', { id: carol, object: 'customer' }, { created: 1_790_000_000 }),
    stripeEvent(
      'checkout.session.completed',
      {
        id: uid('cs'),
        object: 'checkout.session',
        customer: carol,
        mode: 'payment',
        payment_status: 'paid',
        payment_intent: paymentIntent,
      },
      { created: 1_790_000_001 },
    ),
    stripeEvent(
      'charge.dispute.created',
      { id: uid('dp'), object: 'dispute', payment_intent: paymentIntent },
      { created: 1_790_000_002 },
    ),
  );
  const trail = (await get(`/admin/customers/${carol}/events`)).body.data as Array<Record<string, string>>;
  expect(trail.map((e) => [e.type, e.customerId, e.outcome])).toEqual([
    ['customer.created', carol, 'applied'],
    ['checkout.session.completed', carol, 'applied'],
    ['charge.dispute.created', carol, 'applied'],
  ]);
});

it('pages through the log without skipping or repeating a row while events keep arriving', async () => {
  const before = new Set<string>();
  for (let cursor: string | null = null, first = true; first || cursor; first = false) {
    const page: { body: Loose } = await get(`/admin/events?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
    for (const row of page.body.data) before.add(row.id);
    cursor = page.body.nextCursor;
  }
  const arriving = Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      sendEvent(
        app.url,
        stripeEvent(
          'customer.updated',
          { id: uid('cus'), object: 'customer' },
          { created: 1_790_001_000 + i },
        ),
        WEBHOOK_SECRET,
      ),
    ),
  );
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { status: number; body: Loose } = await get(
      `/admin/events?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(page.status).toBe(200);
    seen.push(...page.body.data.map((row: { id: string }) => row.id));
    cursor = page.body.nextCursor;
  } while (cursor);
  await arriving;
  expect(new Set(seen).size).toBe(seen.length);
  for (const id of before) expect(seen).toContain(id);
});

describe('auth', () => {
  it.each([
    ['no header', null],
    ['a wrong key', 'not-the-key'],
    ['a key one character short', ADMIN_KEY.slice(0, -1)],
  ])('answers 401 with %s', async (_name, key) => {
    expect(await get('/admin/customers', key)).toEqual({ status: 401, body: { error: 'unauthorized' } });
  });

  it('answers 401 to a non-Bearer scheme', async () => {
    const response = await fetch(`${app.url}/admin/customers`, {
      headers: { authorization: `Basic ${ADMIN_KEY}` },
    });
    expect(response.status).toBe(401);
  });
});

describe('validation', () => {
  function cursorOf(key: unknown[]): string {
    return Buffer.from(JSON.stringify(key)).toString('base64url');
  }

  it.each([
    ['/admin/customers?limit=0', 'limit'],
    ['/admin/customers?limit=201', 'limit'],
    ['/admin/subscriptions?limit=ten', 'limit'],
    ['/admin/events?cursor=not-a-cursor', 'cursor'],
    ['/admin/events?outcome=lost', 'outcome'],
    ['/admin/events?since=yesterday', 'since'],
    ['/admin/events?type=DROP%20TABLE', 'type'],
    ['/admin/customers/bad%20id', 'id'],
    // PostgreSQL's text cannot hold NUL: these failed the query (500) before they were refused.
    ['/admin/customers?email=a%00b', 'email'],
    ['/admin/entitlements?feature=%00', 'feature'],
    [`/admin/customers?cursor=${cursorOf(['cus_\u0000'])}`, 'cursor'],
    // Well-formed cursors whose key is of the wrong kind for the page.
    [`/admin/events?cursor=${cursorOf(['12'])}`, 'cursor'],
    [`/admin/events?cursor=${cursorOf([1.5])}`, 'cursor'],
    [`/admin/events?cursor=${encodeURIComponent(Buffer.from('[1e400]').toString('base64url'))}`, 'cursor'],
    [`/admin/subscriptions?cursor=${cursorOf([7])}`, 'cursor'],
    [`/admin/entitlements?cursor=${cursorOf(['cus_1', 'seats'])}`, 'cursor'],
  ])('%s is a 400 naming %s', async (path, parameter) => {
    expect(await get(path)).toEqual({ status: 400, body: { error: 'invalid_parameter', parameter } });
  });

  it.each([
    '/admin/customers/cus_unknown',
    '/admin/events/evt_unknown',
    '/admin/customers/cus_unknown/events',
    '/admin/replay/job_unknown',
  ])('%s is a 404', async (path) => {
    expect(await get(path)).toEqual({ status: 404, body: { error: 'not_found' } });
  });

  it('caps the page size by default', async () => {
    const page = (await get('/admin/events')).body;
    expect(page.data.length).toBeLessThanOrEqual(50);
  });
});

it('documents every route in the OpenAPI document served at /docs', async () => {
  const document = (await (await fetch(`${app.url}/docs/json`)).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const routes: Array<[string, string]> = [
    ['post', '/webhooks/stripe'],
    ['get', '/admin/customers'],
    ['get', '/admin/customers/{id}'],
    ['get', '/admin/customers/{id}/state'],
    ['get', '/admin/customers/{id}/events'],
    ['get', '/admin/subscriptions'],
    ['get', '/admin/entitlements'],
    ['get', '/admin/events'],
    ['get', '/admin/events/{id}'],
    ['post', '/admin/replay'],
    ['get', '/admin/replay/{jobId}'],
    ['get', '/health/live'],
    ['get', '/health/ready'],
    ['get', '/metrics'],
  ];
  for (const [method, path] of routes) expect(document.paths[path]?.[method]).toBeDefined();
  expect((await fetch(`${app.url}/docs`)).status).toBe(200);
});

function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

it('serves Prometheus text whose counters move when events arrive', async () => {
  const scrape = async () => (await fetch(`${app.url}/metrics`)).text();
  const before = await scrape();
  for (const line of before.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/);
  }
  await app.deliverFolded(stripeEvent('customer.updated', { id: uid('cus'), object: 'customer' }));
  const body = JSON.stringify({ id: 'evt_x', object: 'event' });
  await fetch(`${app.url}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': sign(body, 'whsec_wrong') },
    body,
  });
  const after = await scrape();
  const stored = 'paywire_webhooks_received_total';
  expect(sample(after, stored, 'type="customer.updated",result="stored"')).toBe(
    sample(before, stored, 'type="customer.updated",result="stored"') + 1,
  );
  expect(sample(after, stored, 'result="invalid_signature"')).toBe(
    sample(before, stored, 'result="invalid_signature"') + 1,
  );
  expect(sample(after, 'paywire_events_projected_total', 'outcome="applied"')).toBeGreaterThan(
    sample(before, 'paywire_events_projected_total', 'outcome="applied"'),
  );
  // Every series names the instance it comes from (several instances, one Prometheus).
  const instance = `instance="${app.config.instanceId}"`;
  expect(after).toContain(`paywire_webhook_ack_seconds_count{${instance}} `);
  expect(after).toContain(`paywire_projection_backlog_events{${instance}} 0\n`);
});

// PostgreSQL keeps notifications until its slowest listener has read them, and every projected batch
// notifies: a listener left in an open transaction (or a frozen instance) fills the queue, and a full
// queue fails every batch's commit. The gauge is how an operator sees it coming.
(serverUrl ? it : it.skip)(
  "reports PostgreSQL's notification queue filling behind a listener that does not read",
  async () => {
    const usage = async () =>
      sample(
        await (await fetch(`${app.url}/metrics`)).text(),
        'paywire_postgres_notification_queue_usage',
        '',
      );
    const stalled = new pg.Client({ connectionString: db.url });
    const notifier = new pg.Client({ connectionString: db.url });
    await stalled.connect();
    await notifier.connect();
    try {
      await stalled.query(`LISTEN paywire_test_${uid('q').replace(/\W/g, '')}`);
      await stalled.query('BEGIN');
      await stalled.query('SELECT 1');
      // Some pages of the queue (8 KB each), on a channel of its own: the queue is the cluster's, shared.
      for (let i = 0; i < 40; i++)
        await notifier.query(`SELECT pg_notify('paywire_test_fill', repeat('x', 7000))`);
      expect(await usage()).toBeGreaterThan(0);
    } finally {
      await stalled.end();
      await notifier.end();
    }
  },
);

it('logs each processed event with its id and type, and never a secret, signature or payload', async () => {
  const event = stripeEvent('customer.updated', {
    id: uid('cus'),
    object: 'customer',
    email: 'private@example.com',
  });
  await app.deliverFolded(event);
  const lines = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const about = lines.filter((line) => line.eventId === event.id);
  expect(about.length).toBeGreaterThanOrEqual(2);
  for (const line of about) expect(line.eventType).toBe('customer.updated');
  const all = logLines.join('\n');
  for (const secret of [WEBHOOK_SECRET, ADMIN_KEY, 'private@example.com', 'v1='])
    expect(all).not.toContain(secret);
});

it('warns at start exactly when the PostgreSQL server runs without autovacuum', async () => {
  const warned = logLines.some((line) => line.includes('"autovacuum":"off"'));
  if (db.kind === 'pglite') return expect(warned).toBe(false);
  const [row] = await app.sql.query<{ setting: string }>(
    `SELECT setting FROM pg_settings WHERE name = 'autovacuum'`,
  );
  expect(warned).toBe(row.setting === 'off');
});
