/**
 * Hostile MQTT input, shared by the MQTT fuzz test and `npm run bench:fuzz`: generated CONNECT packets
 * (odd, oversized or cut-short client ids, usernames and passwords, unknown protocol levels), random
 * bytes, topic tricks a valid client might try, and raw senders over TCP and over WebSocket that report
 * whether the broker closed the connection or it was still open after `waitMs`.
 */
import { connect as tcpConnect } from 'node:net';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import WebSocket from 'ws';

const text = (max: number) => fc.string({ unit: 'binary', maxLength: max });

export const connectPacket = fc
  .record({
    clientId: fc.oneof(
      text(100),
      fc.integer({ min: 1000, max: 65_000 }).map((n) => 'c'.repeat(n)),
    ),
    username: fc.option(text(200), { nil: undefined }),
    password: fc.option(
      fc.oneof(
        text(200),
        fc.integer({ min: 1000, max: 60_000 }).map((n) => 'p'.repeat(n)),
      ),
      { nil: undefined },
    ),
    protocolVersion: fc.constantFrom(3, 4, 5),
    /** A protocol level no MQTT has, written over the real one. */
    badLevel: fc.option(fc.integer({ min: 6, max: 255 }), { nil: undefined }),
    keepalive: fc.integer({ min: 0, max: 65_535 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
  })
  // Combinations mqtt-packet refuses to encode (an empty client id before 3.1.1) are left out.
  .filter(({ clientId, protocolVersion }) => clientId.length > 0 || protocolVersion === 4)
  .map(({ cut, password, badLevel, ...fields }) => {
    const bytes = mqttPacket.generate({
      cmd: 'connect',
      clean: true,
      protocolId: fields.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      ...fields,
      // MQTT 3.1.1 allows a password only after a username.
      ...(password !== undefined && fields.username !== undefined ? { password: Buffer.from(password) } : {}),
    });
    if (badLevel !== undefined) {
      const name = bytes.indexOf(fields.protocolVersion === 3 ? 'MQIsdp' : 'MQTT');
      bytes[name + (fields.protocolVersion === 3 ? 6 : 4)] = badLevel;
    }
    return cut === undefined ? bytes : bytes.subarray(0, cut % bytes.length);
  });

export const noise = fc.uint8Array({ minLength: 1, maxLength: 2000 }).map((bytes) => Buffer.from(bytes));

export const malformed = fc.oneof(connectPacket, noise);

/** Topics a client holding a token for one customer must not be granted, whatever the broker's parser does. */
export function topicTricks(otherCustomer: string): string[] {
  return [
    '#',
    '+',
    '$SYS/#',
    'billing/#',
    'billing/customers/+/state',
    `billing/customers/${otherCustomer}/state`,
    'billing/customers/../state',
    'billing/customers/cus with space/state',
    'billing/customers/cüs_ümlaut/state',
    `billing/customers/${'x'.repeat(65)}/state`,
    'billing/customers/\u0000/state',
    '/billing/customers//state',
  ];
}

export type RawOutcome = 'closed' | 'open';

/** Writes `bytes` on a raw TCP connection; resolves when the broker closes it, or after `waitMs`. */
export function overTcp(port: number, bytes: Buffer, waitMs = 100): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1', () => socket.write(bytes));
    const done = (outcome: RawOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.on('data', () => undefined);
    socket.once('close', () => done('closed'));
    socket.once('error', () => done('closed'));
    const timer = setTimeout(() => done('open'), waitMs);
  });
}

/** The same over a WebSocket on the MQTT path. */
export function overWebSocket(url: string, bytes: Buffer, waitMs = 100): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'mqtt');
    const done = (outcome: RawOutcome) => {
      clearTimeout(timer);
      ws.terminate();
      resolve(outcome);
    };
    ws.once('open', () => ws.send(bytes));
    ws.once('close', () => done('closed'));
    ws.once('error', () => done('closed'));
    const timer = setTimeout(() => done('open'), waitMs);
  });
}
