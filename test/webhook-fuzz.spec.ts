/**
 * Fuzzing the webhook (issue 14): fast-check generates requests around a validly signed event and breaks
 * them — signature headers mutated or truncated, timestamps at and past the tolerance, one byte of the
 * body changed after signing, bytes that are not UTF-8, deeply nested JSON, other content types, huge
 * headers, chunked and empty bodies — and sends them over real HTTP. What must hold: nothing that is not
 * validly signed is ever accepted, no answer is a 5xx, every answer is the one its case calls for, and no
 * rejected request leaves a row in the log. `FUZZ_RUNS` sets the number of requests (CI: 2,000).
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SQL, type Sql } from '../src/database/database.js';
import { WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { sign, stripeEvent, uid } from './support/stripe.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const TOLERANCE = 300;

let db: TestDatabase;
let app: RunningApp;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startApp(db, { STRIPE_WEBHOOK_TOLERANCE_SECONDS: String(TOLERANCE) });
  sql = app.app.get(SQL);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

interface Case {
  body: Buffer;
  headers: Record<string, string>;
  chunked: boolean;
  /** What the answer must be. */
  expect: 200 | 400 | 431;
}

/** Sends with node:http, so that chunked bodies, odd headers and non-UTF-8 bytes go as they are. */
function send(testCase: Case): Promise<{ status: number; body: string }> {
  const url = new URL(`${app.url}/webhooks/stripe`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: testCase.chunked
          ? testCase.headers
          : { ...testCase.headers, 'content-length': testCase.body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    if (testCase.chunked) {
      const half = Math.floor(testCase.body.length / 2);
      req.write(testCase.body.subarray(0, half));
      req.end(testCase.body.subarray(half));
    } else req.end(testCase.body);
  });
}

const now = () => Math.floor(Date.now() / 1000);

/** A fresh, valid event and its JSON. */
const validEvent = fc.constantFrom('customer.updated', 'invoice.paid', 'some.unknown_type').map((type) => {
  const event = stripeEvent(type as 'customer.updated', { id: uid('cus'), object: 'customer' });
  return JSON.stringify(event);
});

const mutation = fc.oneof(
  fc.record({
    kind: fc.constant('valid' as const),
    contentType: fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', ''),
  }),
  fc.record({ kind: fc.constant('truncated-signature' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flipped-signature' as const),
    at: fc.nat(),
    to: fc.constantFrom('0', 'f', 'x', '=', ',', ' '),
  }),
  fc.record({ kind: fc.constant('garbage-signature' as const), header: fc.string({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant('old-timestamp' as const), late: fc.integer({ min: 1, max: 100_000 }) }),
  fc.record({ kind: fc.constant('edge-timestamp' as const) }),
  fc.record({
    kind: fc.constant('changed-byte' as const),
    at: fc.nat(),
    delta: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('not-utf8' as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 200 }),
  }),
  fc.record({ kind: fc.constant('deep-json' as const), depth: fc.integer({ min: 1000, max: 200_000 }) }),
  fc.record({ kind: fc.constant('not-an-event' as const), value: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ kind: fc.constant('empty' as const), signed: fc.boolean() }),
  fc.record({ kind: fc.constant('huge-header' as const), size: fc.integer({ min: 20_000, max: 60_000 }) }),
  fc.record({ kind: fc.constant('wrong-secret' as const) }),
);

function describeCase(
  json: string,
  m:
    | { kind: 'valid'; contentType: string }
    | { kind: 'truncated-signature'; at: number }
    | { kind: 'flipped-signature'; at: number; to: string }
    | { kind: 'garbage-signature'; header: string }
    | { kind: 'old-timestamp'; late: number }
    | { kind: 'edge-timestamp' }
    | { kind: 'changed-byte'; at: number; delta: number }
    | { kind: 'not-utf8'; bytes: Uint8Array }
    | { kind: 'deep-json'; depth: number }
    | { kind: 'not-an-event'; value: unknown }
    | { kind: 'empty'; signed: boolean }
    | { kind: 'huge-header'; size: number }
    | { kind: 'wrong-secret' },
): Case {
  const headers = (signature: string, contentType = 'application/json') => ({
    ...(contentType ? { 'content-type': contentType } : {}),
    'stripe-signature': signature,
  });
  const body = Buffer.from(json);
  const good = sign(json, WEBHOOK_SECRET);
  switch (m.kind) {
    case 'valid':
      return { body, headers: headers(good, m.contentType), chunked: false, expect: 200 };
    case 'truncated-signature': {
      const cut = good.slice(0, m.at % good.length);
      return { body, headers: headers(cut), chunked: false, expect: 400 };
    }
    case 'flipped-signature': {
      const at = good.indexOf('v1=') + 3 + (m.at % 64);
      const flipped = good.slice(0, at) + (good[at] === m.to ? '1' : m.to) + good.slice(at + 1);
      return { body, headers: headers(flipped), chunked: false, expect: 400 };
    }
    case 'garbage-signature':
      return {
        body,
        // Only what an HTTP header may hold; the rest is refused by Node before it is sent.
        headers: headers(m.header.replace(/[^\t\x20-\x7e]/g, '') || 'x'),
        chunked: false,
        expect: 400,
      };
    case 'old-timestamp':
      return {
        body,
        headers: headers(sign(json, WEBHOOK_SECRET, now() - TOLERANCE - m.late)),
        chunked: false,
        expect: 400,
      };
    case 'edge-timestamp':
      // Inside the tolerance by a few seconds: still accepted.
      return {
        body,
        headers: headers(sign(json, WEBHOOK_SECRET, now() - TOLERANCE + 5)),
        chunked: false,
        expect: 200,
      };
    case 'changed-byte': {
      const altered = Buffer.from(body);
      const at = m.at % altered.length;
      altered[at] = (altered[at] + m.delta) % 256;
      return { body: altered, headers: headers(good), chunked: false, expect: 400 };
    }
    case 'not-utf8': {
      const bytes = Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(m.bytes)]);
      // Signed: the signature holds, and what it signs is not an event.
      return {
        body: bytes,
        headers: headers(sign(bytes.toString('latin1'), WEBHOOK_SECRET)),
        chunked: true,
        expect: 400,
      };
    }
    case 'deep-json': {
      const deep = '['.repeat(m.depth) + ']'.repeat(m.depth);
      return {
        body: Buffer.from(deep),
        headers: headers(sign(deep, WEBHOOK_SECRET)),
        chunked: m.depth % 2 === 0,
        expect: 400,
      };
    }
    case 'not-an-event': {
      const text = JSON.stringify(m.value) ?? 'null';
      return {
        body: Buffer.from(text),
        headers: headers(sign(text, WEBHOOK_SECRET)),
        chunked: false,
        expect: 400,
      };
    }
    case 'empty':
      return {
        body: Buffer.alloc(0),
        headers: headers(m.signed ? sign('', WEBHOOK_SECRET) : ''),
        chunked: false,
        expect: 400,
      };
    case 'huge-header':
      return {
        body,
        headers: { ...headers(good), 'x-padding': 'p'.repeat(m.size) },
        chunked: false,
        expect: 431,
      };
    case 'wrong-secret':
      return { body, headers: headers(sign(json, 'whsec_not_ours')), chunked: false, expect: 400 };
  }
}

it(`accepts only validly signed events among ${RUNS} generated requests, and answers every other with a 4xx`, async () => {
  const [{ count: before }] = await sql.query<{ count: string }>(`SELECT count(*) FROM stripe_events`);
  let accepted = 0;
  const answers = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(validEvent, mutation, async (json, m) => {
      const testCase = describeCase(json, m);
      const answer = await send(testCase);
      answers.set(answer.status, (answers.get(answer.status) ?? 0) + 1);
      expect(answer.status).toBe(testCase.expect);
      expect(answer.body).not.toMatch(/stack|SELECT|whsec_|at \//i);
      if (answer.status === 200) accepted++;
    }),
    { numRuns: RUNS },
  );
  const [{ count: after }] = await sql.query<{ count: string }>(`SELECT count(*) FROM stripe_events`);
  // Every accepted request was a new event; nothing else left a row.
  expect(Number(after) - Number(before)).toBe(accepted);
  expect([...answers.keys()].filter((status) => status >= 500)).toEqual([]);
}, 300_000);
