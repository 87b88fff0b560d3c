/**
 * SlowSubscriberGuard on real TCP sockets whose peer stops reading, with the guard's clock in the test's
 * hands: a stuck socket is dropped after its strikes, a late check (the broker stalled) does not count, and
 * a socket that drained between checks starts over.
 */
import { afterEach, expect, it } from '@jest/globals';
import type { Client } from 'aedes';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { SlowSubscriberGuard } from '../src/realtime/slow-subscribers.js';

const INTERVAL = 250;
const opened: (Socket | Server)[] = [];

afterEach(() => {
  for (const handle of opened.splice(0)) {
    if ('destroy' in handle) handle.destroy();
    else handle.close();
  }
});

/** The server's side of a connection (what Aedes writes to) and the client's side, paused. */
async function connectionWithPausedPeer(): Promise<{ server: Socket; peer: Socket }> {
  const listener = createServer();
  opened.push(listener);
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  const accepted = once(listener, 'connection');
  const peer = connect(port, '127.0.0.1');
  peer.pause();
  const [server] = (await accepted) as [Socket];
  opened.push(server, peer);
  return { server, peer };
}

/** Writes until the socket asks the writer to wait for a drain. */
async function fill(socket: Socket): Promise<void> {
  const chunk = Buffer.alloc(256 * 1024);
  while (socket.write(chunk));
  expect(socket.writableNeedDrain).toBe(true);
}

/**
 * A guard with the test's clock, watching a subscriber whose peer has stopped reading and whose socket is
 * full; `check(after)` moves the clock by `after` (one interval by default) and checks.
 */
async function stuckSubscriber() {
  let now = 0;
  const dropped: Client[] = [];
  const guard = new SlowSubscriberGuard(
    INTERVAL,
    4,
    (client) => dropped.push(client),
    () => now,
  );
  const check = (after = INTERVAL) => {
    now += after;
    guard.check();
  };
  const { server, peer } = await connectionWithPausedPeer();
  const client = { conn: server } as unknown as Client;
  guard.watch(client);
  await fill(server);
  return { guard, dropped, check, server, peer, client };
}

it('drops a subscriber whose socket has not drained through four on-time checks, not sooner', async () => {
  const { dropped, check, client } = await stuckSubscriber();
  for (let i = 0; i < 3; i++) check();
  expect(dropped).toEqual([]);
  check();
  expect(dropped).toEqual([client]);
  check();
  expect(dropped).toEqual([client]);
});

it('does not count a check that came late, when the broker itself stood still', async () => {
  const { dropped, check, client } = await stuckSubscriber();
  check();
  check();
  check();
  check(INTERVAL * 6);
  check();
  check();
  check();
  expect(dropped).toEqual([]);
  check();
  expect(dropped).toEqual([client]);
});

it('starts over for a subscriber whose socket drained between checks', async () => {
  const { dropped, check, client, server, peer } = await stuckSubscriber();
  check();
  check();
  check();
  peer.resume();
  await once(server, 'drain');
  peer.pause();
  await fill(server);
  // The first check after the drain sees the progress; three more find it stuck again.
  for (let i = 0; i < 4; i++) check();
  expect(dropped).toEqual([]);
  check();
  expect(dropped).toEqual([client]);
});

it('forgets a subscriber whose connection closed, and leaves one with nothing waiting alone', async () => {
  const { guard, dropped, check, server } = await stuckSubscriber();
  expect(guard.watching).toBe(1);
  server.destroy();
  await once(server, 'close');
  expect(guard.watching).toBe(0);
  for (let i = 0; i < 8; i++) check();
  expect(dropped).toEqual([]);

  const { server: idleServer } = await connectionWithPausedPeer();
  guard.watch({ conn: idleServer } as unknown as Client);
  for (let i = 0; i < 8; i++) check();
  expect(dropped).toEqual([]);
});
