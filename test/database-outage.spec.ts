/**
 * The PostgreSQL server becomes unreachable (a TCP proxy in front of it is cut): webhooks are answered 503
 * and nothing is stored; once the server is reachable again the same event is accepted. This needs a
 * server to cut, so it runs where one is configured (CI); with embedded PGlite the same answer is checked
 * in ingest.spec.ts by making the log's table unavailable.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type Stripe from 'stripe';
import { WEBHOOK_SECRET, startApp, type RunningApp } from './support/app.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';
import { sendEvent, stripeEvent, uid } from './support/stripe.js';

class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => this.sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  async cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server!.close(resolve));
  }
}

const describeWithServer = serverUrl ? describe : describe.skip;

describeWithServer('when PostgreSQL is unreachable', () => {
  let db: TestDatabase;
  let app: RunningApp;
  let proxy: CuttableProxy;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url!);
    proxy = new CuttableProxy(target.hostname, Number(target.port || 5432));
    await proxy.open();
    const viaProxy = new URL(db.url!);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    app = await startApp({ ...db, url: viaProxy.toString() });
  });

  afterAll(async () => {
    await app?.close();
    await proxy?.cut();
    await db?.drop();
  });

  it('answers 503 unavailable, stores nothing, and accepts the same event once it is back', async () => {
    const event = stripeEvent<Stripe.CustomerUpdatedEvent>('customer.updated', {
      id: uid('cus'),
      object: 'customer',
    });
    await proxy.cut();
    expect(await sendEvent(app.url, event, WEBHOOK_SECRET)).toEqual({
      status: 503,
      body: { error: 'unavailable' },
    });
    const ready = await fetch(`${app.url}/health/ready`);
    expect(ready.status).toBe(503);
    await proxy.open();
    expect(await sendEvent(app.url, event, WEBHOOK_SECRET)).toEqual({
      status: 200,
      body: { received: true, duplicate: false },
    });
    const rows = await app.sql.query(`SELECT id FROM stripe_events WHERE id = $1`, [event.id]);
    expect(rows).toHaveLength(1);
  });
});
