/**
 * The subscribers of `bench:push`, in a process of their own so that the server's memory can be read
 * apart from theirs. Connects `count` mqtt.js clients over WebSocket, each with its own token and topic,
 * reports when all are subscribed, and for every state message reports when it arrived and which
 * marker (the customer's email) it carried, and any connection lost after it was made.
 */
import mqtt, { type MqttClient } from 'mqtt';

interface Start {
  url: string;
  tokens: Array<{ token: string; clientId: string; topic: string }>;
  concurrency: number;
}

const clients: MqttClient[] = [];

function connect(url: string, entry: Start['tokens'][number]): Promise<void> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      clientId: entry.clientId,
      username: 'bench',
      password: entry.token,
      reconnectPeriod: 0,
      connectTimeout: 60_000,
    });
    clients.push(client);
    client.once('error', reject);
    client.once('connect', () => {
      client.once('close', () => process.send!({ kind: 'disconnect', clientId: entry.clientId }));
      client.subscribe(entry.topic, { qos: 1 }, (error) => (error ? reject(error) : resolve()));
    });
    client.on('message', (_topic, payload) => {
      const at = performance.timeOrigin + performance.now();
      const email = (JSON.parse(payload.toString()) as { email?: string }).email;
      if (email) process.send!({ kind: 'message', email, at });
    });
  });
}

process.on('message', async (message: { kind: 'start'; start: Start } | { kind: 'stop' }) => {
  if (message.kind === 'stop') {
    for (const client of clients) client.end(true);
    process.exit(0);
  }
  const { url, tokens, concurrency } = message.start;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tokens.length) await connect(url, tokens[next++]);
    }),
  );
  process.send!({ kind: 'ready', seconds: (performance.now() - started) / 1000 });
});
