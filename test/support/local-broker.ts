/**
 * A bare Aedes broker over WebSocket, for client tests that need a broker they control: one that sends
 * states out of order, or drops every connection at once. Paywire's own broker never does either.
 */
import { createServer, type Server } from 'node:http';
import { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';

export interface LocalBroker {
  url: string;
  publish(topic: string, payload: unknown): Promise<void>;
  clients(): number;
  dropEveryone(): void;
  close(): Promise<void>;
}

export async function startLocalBroker(): Promise<LocalBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer();
  const sockets = new WebSocketServer({ server });
  sockets.on('connection', (ws, request) => broker.handle(createWebSocketStream(ws), request));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `ws://127.0.0.1:${port}`,
    publish: (topic, payload) =>
      new Promise((resolve, reject) =>
        broker.publish(
          { cmd: 'publish', topic, payload: JSON.stringify(payload), qos: 1, retain: true, dup: false },
          (error) => (error ? reject(error) : resolve()),
        ),
      ),
    clients: () => broker.connectedClients,
    dropEveryone: () => {
      for (const ws of sockets.clients) ws.terminate();
    },
    close: async () => {
      for (const ws of sockets.clients) ws.terminate();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
