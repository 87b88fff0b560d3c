/**
 * Generated webhook requests around a validly signed event, for the webhook fuzz test and
 * `npm run bench:fuzz`: signature headers mutated or truncated, timestamps at and past the tolerance, a
 * byte of the body changed after signing, bytes that are not UTF-8, deeply nested JSON, other content
 * types, huge headers, chunked and empty bodies, a wrong secret. Each case says which answer it must get.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import Stripe from 'stripe';
import { stripeEventEnvelope } from '../src/stripe-api/stripe-event.js';

const sign = (body: string, secret: string, timestamp?: number) =>
  Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
const uid = (prefix: string) => `${prefix}_${randomBytes(9).toString('hex')}`;

export interface WebhookCase {
  /** What the case is, for reports. */
  kind: string;
  body: Buffer;
  headers: Record<string, string>;
  chunked: boolean;
  /** What the answer must be. */
  expect: 200 | 400 | 431;
}

/** Sends with node:http, so that chunked bodies, odd headers and non-UTF-8 bytes go as they are. */
export function sendCase(baseUrl: string, testCase: WebhookCase): Promise<{ status: number; body: string }> {
  const url = new URL(`${baseUrl}/webhooks/stripe`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        // A connection per request: one that the server closes after a 431 must not take others down.
        agent: false,
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

/** Requests for an endpoint that verifies with `secret` and a tolerance of `tolerance` seconds. */
export function webhookCases(secret: string, tolerance: number): fc.Arbitrary<WebhookCase> {
  const now = () => Math.floor(Date.now() / 1000);
  const validEvent = fc.constantFrom('customer.updated', 'invoice.paid', 'some.unknown_type').map((type) =>
    JSON.stringify(
      stripeEventEnvelope({
        id: uid('evt'),
        type,
        created: now(),
        object: { id: uid('cus'), object: 'customer' },
      }),
    ),
  );
  return fc
    .tuple(validEvent, mutation)
    .map(([json, m]) => ({ kind: m.kind, ...describeCase(json, m, secret, tolerance, now) }));
}

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
  secret: string,
  tolerance: number,
  now: () => number,
): Omit<WebhookCase, 'kind'> {
  const headers = (signature: string, contentType = 'application/json') => ({
    ...(contentType ? { 'content-type': contentType } : {}),
    'stripe-signature': signature,
  });
  const body = Buffer.from(json);
  const good = sign(json, secret);
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
        headers: headers(sign(json, secret, now() - tolerance - m.late)),
        chunked: false,
        expect: 400,
      };
    case 'edge-timestamp':
      // Inside the tolerance by a few seconds: still accepted.
      return {
        body,
        headers: headers(sign(json, secret, now() - tolerance + 5)),
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
        headers: headers(sign(bytes.toString('latin1'), secret)),
        chunked: true,
        expect: 400,
      };
    }
    case 'deep-json': {
      const deep = '['.repeat(m.depth) + ']'.repeat(m.depth);
      return {
        body: Buffer.from(deep),
        headers: headers(sign(deep, secret)),
        chunked: m.depth % 2 === 0,
        expect: 400,
      };
    }
    case 'not-an-event': {
      const text = JSON.stringify(m.value) ?? 'null';
      return {
        body: Buffer.from(text),
        headers: headers(sign(text, secret)),
        chunked: false,
        expect: 400,
      };
    }
    case 'empty':
      return {
        body: Buffer.alloc(0),
        headers: headers(m.signed ? sign('', secret) : ''),
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
