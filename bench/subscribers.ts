/**
 * Many mqtt.js subscribers in a child process (bench/push-clients.ts), one per customer, each with its own
 * token and client id, so that the server under test is measured apart from its clients. Each state message
 * is reported with the marker it carried (the customer's email, before the `@`) and when it arrived.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { MqttTokens } from '../src/realtime/mqtt-tokens.js';
import { customerStateTopic } from '../src/realtime/topics.js';
import { BENCH_SECRETS } from './support.js';

export interface Subscribers {
  child: ChildProcess;
  /** How long connecting and subscribing all of them took. */
  seconds: number;
  stop(): Promise<void>;
}

export async function startSubscribers(
  url: string,
  customers: string[],
  prefix: string,
  onMessage: (marker: string, at: number) => void,
  onDisconnect: (clientId: string) => void = () => undefined,
): Promise<Subscribers> {
  const tokens = new MqttTokens(BENCH_SECRETS.MQTT_TOKEN_SECRET);
  const entries = await Promise.all(
    customers.map(async (customer, i) => ({
      token: (await tokens.mint({ customerId: customer, ttlSeconds: 24 * 3600 })).token,
      clientId: `${customer}:${prefix}${i}`,
      topic: customerStateTopic(customer),
    })),
  );
  const child = fork(new URL('./push-clients.js', import.meta.url), { stdio: 'inherit' });
  // Attached before the start: retained states arrive while the clients are still subscribing.
  child.on('message', (message: { kind: string; email?: string; at?: number; clientId?: string }) => {
    if (message.kind === 'message') onMessage(message.email!.split('@')[0], message.at!);
    if (message.kind === 'disconnect') onDisconnect(message.clientId!);
  });
  const seconds = await new Promise<number>((resolve) => {
    child.on('message', (message: { kind: string; seconds?: number }) => {
      if (message.kind === 'ready') resolve(message.seconds!);
    });
    child.send({ kind: 'start', start: { url, tokens: entries, concurrency: 50 } });
  });
  return {
    child,
    seconds,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ kind: 'stop' });
      await exited;
    },
  };
}
