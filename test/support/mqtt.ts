/**
 * Real mqtt.js 5 clients (MQTT 3.1.1) for tests: tokens from the admin API, connect over WebSocket or TCP,
 * subscribe and read the SUBACK code, wait for messages. Every client opened here is closed by
 * `closeMqttClients()`.
 */
import { expect } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { ADMIN_KEY } from './app.js';

export interface Grant {
  token: string;
  clientId: string;
  topics: string[];
  url: string;
}

const opened: MqttClient[] = [];

/** A token from `POST /admin/tokens`. */
export async function mintToken(appUrl: string, body: Record<string, unknown>): Promise<Grant> {
  const response = await fetch(`${appUrl}/admin/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Grant;
}

export function connectMqtt(
  url: string,
  password: string,
  clientId: string,
  options: { origin?: string } = {},
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      clientId,
      username: 'ignored',
      password,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...(options.origin ? { wsOptions: { headers: { origin: options.origin } } } : {}),
    });
    opened.push(client);
    client.once('connect', () => resolve(client));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
    // A refused WebSocket upgrade closes the client without an MQTT error.
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** Resolves with the SUBACK return code: the granted QoS, or 128 for a refusal. */
export function subscribe(client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve, reject) =>
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      // mqtt.js 5 reports a refused subscription as an error that carries the SUBACK packet.
      const refused = (error as { packet?: { granted?: number[] } } | undefined)?.packet?.granted?.[0];
      if (refused !== undefined) resolve(refused);
      else if (error) reject(error);
      else resolve(granted![0].qos);
    }),
  );
}

export function nextMessage(
  client: MqttClient,
  topic: string,
): Promise<{ payload: Record<string, unknown>; retain: boolean }> {
  return new Promise((resolve) => {
    const listener = (received: string, payload: Buffer, packet: { retain: boolean }) => {
      if (received !== topic) return;
      client.off('message', listener);
      resolve({ payload: JSON.parse(payload.toString()) as Record<string, unknown>, retain: packet.retain });
    };
    client.on('message', listener);
  });
}

/** Collects every message a client receives, as topic and parsed payload, in arrival order. */
export function recordMessages(client: MqttClient): { topic: string; payload: Record<string, unknown> }[] {
  const received: { topic: string; payload: Record<string, unknown> }[] = [];
  client.on('message', (topic, payload) =>
    received.push({ topic, payload: JSON.parse(payload.toString()) as Record<string, unknown> }),
  );
  return received;
}

export function closeMqttClients(): void {
  for (const client of opened.splice(0)) client.end(true);
}
