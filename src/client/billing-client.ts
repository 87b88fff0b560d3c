/**
 * The browser client of Paywire's push (`paywire/client`): connect to the MQTT-over-WebSocket endpoint with
 * a token fetched from the app's own server route, follow one customer's or user's state, and hand the
 * newest state to listeners. It refreshes the token before it expires and on every reconnect, reconnects
 * with jittered exponential backoff, and ignores any state whose `version` is older than the one shown
 * (SPEC section 6). Connections are shared by key and closed a moment after their last listener leaves,
 * so React StrictMode's mount–unmount–mount keeps one connection. The React hook (`paywire/client/react`)
 * never connects during server rendering.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { BillingState } from '../billing/billing-state.js';

/** What the app's token route returns: `POST /admin/tokens`'s answer, or the same minted with the secret. */
export interface BillingToken {
  token: string;
  /** `ws://…/mqtt` or `wss://…/mqtt`. */
  url: string;
  /** The subject, optionally followed by `:` and anything. */
  clientId: string;
  expiresAt: string;
}

export interface BillingSubscriptionOptions {
  /** Fetches a fresh token, e.g. `() => fetch('/api/billing-token').then((r) => r.json())`. */
  getToken: () => Promise<BillingToken>;
  /** Which state to follow: a user's (once linked) or a customer's. */
  userId?: string;
  customerId?: string;
  /** Refresh this long before the token expires (default 60 s, at most half its lifetime). */
  refreshBeforeMs?: number;
  /** Reconnect backoff bounds (defaults 500 ms and 30 s); each wait is jittered to 50–100 %. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Further mqtt.js options (keepalive, timerVariant, …); the token, client id and reconnection stay ours. */
  mqttOptions?: Partial<IClientOptions>;
}

export type ConnectionStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface BillingSnapshot {
  state: BillingState | null;
  status: ConnectionStatus;
}

type Listener = (snapshot: BillingSnapshot) => void;

export function stateTopic(options: Pick<BillingSubscriptionOptions, 'userId' | 'customerId'>): string {
  if (options.userId) return `billing/users/${options.userId}/state`;
  if (options.customerId) return `billing/customers/${options.customerId}/state`;
  throw new Error('paywire/client: give a userId or a customerId');
}

/** One MQTT connection following one state topic, kept alive across token expiries and network loss. */
export class BillingConnection {
  private client: MqttClient | null = null;
  private snapshot: BillingSnapshot = { state: null, status: 'connecting' };
  private readonly listeners = new Set<Listener>();
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private closed = false;
  /** How many MQTT connections this object has opened (tests and diagnostics). */
  connections = 0;

  constructor(
    private readonly options: BillingSubscriptionOptions,
    readonly topic = stateTopic(options),
  ) {
    void this.connect();
  }

  current(): BillingSnapshot {
    return this.snapshot;
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.retryTimer);
    this.client?.end(true);
    this.client = null;
    this.update({ status: 'closed' });
  }

  private update(change: Partial<BillingSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    for (const listener of this.listeners) listener(this.snapshot);
  }

  private receive(payload: { toString(): string }): void {
    let state: BillingState;
    try {
      // mqtt.js hands a Buffer (its browser build ships a Buffer polyfill), so toString() decodes UTF-8.
      state = JSON.parse(payload.toString()) as BillingState;
    } catch {
      return;
    }
    // A state with a lower version never replaces a higher one (retained copies, races, reconnects).
    const shown = this.snapshot.state?.version ?? -1;
    if (typeof state.version !== 'number' || state.version < shown) return;
    this.update({ state });
  }

  /** Opens a connection with a fresh token; the previous one is closed once the new one is live. */
  private async connect(): Promise<void> {
    if (this.closed) return;
    let grant: BillingToken;
    try {
      grant = await this.options.getToken();
    } catch {
      this.retry();
      return;
    }
    if (this.closed) return;
    const previous = this.client;
    const client = mqtt.connect(grant.url, {
      ...this.options.mqttOptions,
      protocolVersion: 4,
      clientId: grant.clientId,
      username: 'paywire-client',
      password: grant.token,
      // Reconnection is ours: each attempt needs a fresh token and a jittered wait.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    this.connections++;
    this.client = client;
    client.on('connect', () => {
      this.failures = 0;
      previous?.end(true);
      client.subscribe(this.topic, { qos: 1 });
      this.update({ status: 'live' });
      this.scheduleRefresh(grant);
    });
    client.on('message', (_topic, payload) => this.receive(payload));
    client.on('close', () => {
      if (this.client !== client || this.closed) return;
      this.update({ status: 'reconnecting' });
      this.retry();
    });
    client.on('error', () => client.end(true));
  }

  private scheduleRefresh(grant: BillingToken): void {
    clearTimeout(this.refreshTimer);
    const left = new Date(grant.expiresAt).getTime() - Date.now();
    const margin = Math.min(this.options.refreshBeforeMs ?? 60_000, left / 2);
    this.refreshTimer = setTimeout(() => void this.connect(), Math.max(0, left - margin));
  }

  private retry(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    const min = this.options.minBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const wait = Math.min(max, min * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures++;
    this.retryTimer = setTimeout(() => void this.connect(), wait);
  }
}

const shared = new Map<string, BillingConnection>();

/**
 * Follows a state with a shared connection: listeners of the same topic share one MQTT connection, which
 * closes a moment after the last one leaves (so an immediate re-subscribe, as StrictMode does, reuses it).
 * Returns the unsubscribe function.
 */
export function subscribeBillingState(options: BillingSubscriptionOptions, listener: Listener): () => void {
  const key = stateTopic(options);
  let connection = shared.get(key);
  if (!connection) {
    connection = new BillingConnection(options, key);
    shared.set(key, connection);
  }
  const stop = connection.listen(listener);
  listener(connection.current());
  const owner = connection;
  return () => {
    stop();
    setTimeout(() => {
      if (owner.listenerCount === 0 && shared.get(key) === owner) {
        shared.delete(key);
        owner.close();
      }
    }, 0);
  };
}

/** The shared connection of a topic, if one is open (for diagnostics and tests). */
export function sharedConnection(
  options: Pick<BillingSubscriptionOptions, 'userId' | 'customerId'>,
): BillingConnection | undefined {
  return shared.get(stateTopic(options));
}
