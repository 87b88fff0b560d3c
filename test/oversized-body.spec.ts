/**
 * A body over `WEBHOOK_BODY_LIMIT_BYTES` gets a 413 the sender can read (SPEC section 2). Senders write the
 * whole body before they read (fetch, and a raw socket that does the same); a server that answers early
 * and closes with the body unread makes the kernel reset the connection, and the sender sees a broken
 * pipe instead of the answer. The server runs as its own process: in one event loop with the sender the
 * race never shows.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { serverProcess, type ServerProcess } from './support/server-process.js';
import { postWebhook } from './support/stripe.js';

let db: TestDatabase;
let server: ServerProcess;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await serverProcess(db);
  await server.start();
});

afterAll(async () => {
  await server?.kill();
  await db?.drop();
});

/**
 * Writes a whole request (headers and body at once, as HTTP clients do) on a raw socket, and only then
 * reads: the answer must arrive intact rather than as a reset of the connection.
 */
function isWholeResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1];
  return end >= 0 && length !== undefined && text.length - end - 4 >= Number(length);
}

function eagerPost(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ response: string; error?: string }> {
  const { hostname, port } = new URL(url);
  const head =
    `POST /webhooks/stripe HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
    Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    '\r\n';
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let error: string | undefined;
    socket.on('error', (cause) => (error ??= cause.message));
    const finish = () => {
      socket.destroy();
      resolve({ response: Buffer.concat(chunks).toString('latin1'), error });
    };
    socket.on('close', finish);
    // Nothing is read until the whole request has been handed to the kernel.
    socket.pause();
    socket.write(head);
    socket.write(body, () => {
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (isWholeResponse(Buffer.concat(chunks).toString('latin1'))) finish();
      });
      socket.resume();
    });
  });
}

describe('an oversized body', () => {
  const body = Buffer.alloc(2 * 1024 * 1024, 'x');

  it.each([
    ['with its Content-Length', { 'content-length': String(body.length) }],
    ['chunked, without a length', { 'transfer-encoding': 'chunked' }],
  ])('written eagerly %s, reads a 413 ten times in a row', async (_name, framing) => {
    const payload =
      'transfer-encoding' in framing
        ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
        : body;
    for (let i = 0; i < 10; i++) {
      const { response, error } = await eagerPost(server.url, payload, {
        'content-type': 'application/json',
        'stripe-signature': 't=1,v1=00',
        ...framing,
      });
      expect({ error, status: response.split('\r\n')[0] }).toEqual({
        error: undefined,
        status: 'HTTP/1.1 413 Payload Too Large',
      });
      expect(response.endsWith('{"error":"payload_too_large"}')).toBe(true);
    }
  });

  it('reaches fetch as a 413 ten times in a row, not as a broken pipe', async () => {
    const answers = [];
    for (let i = 0; i < 10; i++) {
      answers.push(
        await postWebhook(server.url, body.toString(), { 'stripe-signature': 't=1,v1=00' }).then(
          (answer) => answer,
          (error: Error) => ({ error: String((error.cause as Error | undefined)?.message ?? error.message) }),
        ),
      );
    }
    expect(answers).toEqual(Array(10).fill({ status: 413, body: { error: 'payload_too_large' } }));
  });

  it('cuts off a sender that keeps sending far past the limit', async () => {
    const flood = Buffer.alloc(40 * 1024 * 1024, 'x');
    const { error } = await eagerPost(server.url, flood, {
      'content-type': 'application/json',
      'content-length': String(flood.length),
    });
    expect(error).toMatch(/EPIPE|ECONNRESET/);
  });
});
