/**
 * The embedded MQTT broker (Aedes, MQTT 3.1.1) that pushes billing state to browsers (SPEC section 6).
 * It is served over WebSocket on the HTTP port at `MQTT_WS_PATH` (and over TCP on `MQTT_TCP_PORT` when set)
 * and lives and dies with the Nest application.
 *
 * Connecting is a named list of checks, like Aedes's own handlers: the WebSocket's origin, the will
 * (dropped), the token (HS256, unexpired), the client id (bound to the token's subject); then a timer closes
 * the connection when the token expires, since nothing re-checks a token after CONNECT. Clients never
 * publish. States are published at QoS 1 as the change feed (state-feed.ts) hands them over, in version
 * order; the retained state a subscriber gets first is read from the projections (retained-states.ts), so
 * this process holds no copy of every state and publishes nothing at start.
 * Every publish goes through one `OrderedPublisher`, so no state can be dropped because another message
 * followed it (moscajs/aedes#994, #955; test/push-integrity.spec.ts).
 */
import { createServer, type Server as TcpServer } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { BillingState } from '../billing/billing-state.js';
import { CONFIG, type Config } from '../config/config.js';
import { SQL, type Sql } from '../database/database.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { CustomerStateChanged, NotableEventProjected } from '../projections/messages.js';
import {
  CONNECTS_PER_WINDOW,
  FLOOD_WINDOW_MS,
  FixedWindow,
  SUBSCRIPTIONS_PER_WINDOW,
} from './flood-guard.js';
import { MqttTokens } from './mqtt-tokens.js';
import { OrderedPublisher } from './ordered-publisher.js';
import { SlowSubscriberGuard } from './slow-subscribers.js';
import { retainedStatesFrom } from './retained-states.js';
import {
  customerEventsTopic,
  customerStateTopic,
  isTopicId,
  maySubscribe,
  userEventsTopic,
  userStateTopic,
  type Grant,
} from './topics.js';

/**
 * Aedes waits for a subscriber's socket to drain before moving on, so a frozen subscriber would hold every
 * delivery back. SlowSubscriberGuard drops one whose socket has not drained through this many checks in a
 * row (about a second); state messages are small, so a live browser drains far sooner.
 */
const SLOW_CHECK_INTERVAL_MS = 250;
const SLOW_CHECK_STRIKES = 4;
/** Aedes' own wall-clock drop, kept only as a backstop behind SlowSubscriberGuard (see there). */
const DRAIN_TIMEOUT_MS = 30_000;
/**
 * A connection that has not sent its whole CONNECT after this long is closed. A client sends it as soon
 * as the socket opens, so 10 s is ample even on a poor mobile link; Aedes' default (30 s) let a cut-short
 * CONNECT hold a socket three times as long (bench/mqtt-fuzz.bench.ts counts them).
 */
const CONNECT_TIMEOUT_MS = 10_000;
// AuthErrorCode is a const enum, which isolatedModules cannot inline: the MQTT 3.1.1 return codes.
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

type GrantedClient = Client & { grant?: Grant; expiryTimer?: NodeJS.Timeout; subscribing?: FixedWindow };

function refuse(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

@Injectable()
export class BillingBroker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private broker: Aedes | undefined;
  private webSockets: WebSocketServer | undefined;
  private tcp: TcpServer | undefined;
  private readonly tokens: MqttTokens;
  private publisher: OrderedPublisher | undefined;
  private readonly connects = new FixedWindow(CONNECTS_PER_WINDOW, FLOOD_WINDOW_MS);
  private readonly slowSubscribers = new SlowSubscriberGuard(
    SLOW_CHECK_INTERVAL_MS,
    SLOW_CHECK_STRIKES,
    (client) => {
      this.metrics.mqttSlowDisconnects.inc();
      client.close();
    },
  );

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SQL) private readonly sql: Sql,
    private readonly adapterHost: HttpAdapterHost,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.tokens = new MqttTokens(config.mqttTokenSecret);
  }

  async onApplicationBootstrap(): Promise<void> {
    const broker = await Aedes.createBroker({
      persistence: retainedStatesFrom(this.sql),
      drainTimeout: DRAIN_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      preConnect: (_client, packet, done) => {
        // A client id that keeps connecting (a loop, or a flood) is turned away until its window ends.
        if (!this.connects.allow(packet.clientId)) {
          this.metrics.mqttFloodDisconnects.inc({ kind: 'connect' });
          done(new Error('too many connections for this client id'), false);
          return;
        }
        // Browsers' wills are dropped (SPEC section 6): nothing a client sends is ever published.
        packet.will = undefined;
        done(null, true);
      },
      authenticate: (client, _username, password, done) => {
        void this.authenticate(client as GrantedClient, password).then(
          () => done(null, true),
          (error: AuthenticateError) => done(error, false),
        );
      },
      authorizeSubscribe: (client, subscription, done) => {
        const granted = client as GrantedClient;
        granted.subscribing ??= new FixedWindow(SUBSCRIPTIONS_PER_WINDOW, FLOOD_WINDOW_MS);
        if (!granted.subscribing.allow('')) {
          this.metrics.mqttFloodDisconnects.inc({ kind: 'subscribe' });
          client.close();
          done(new Error('too many subscriptions'));
          return;
        }
        const grant = granted.grant;
        // null refuses this one subscription with SUBACK 0x80 and keeps the connection.
        done(null, grant && maySubscribe(grant, subscription.topic) ? subscription : null);
      },
      authorizePublish: (client, _packet, done) => {
        done(client ? new Error('clients may not publish') : null);
      },
    });
    broker.on('client', (client) => {
      this.metrics.mqttClients.inc();
      this.slowSubscribers.watch(client);
    });
    broker.on('clientDisconnect', (client) => {
      this.metrics.mqttClients.dec();
      clearTimeout((client as GrantedClient).expiryTimer);
    });
    this.broker = broker;
    this.slowSubscribers.start();
    this.publisher = new OrderedPublisher(broker, 'billing/#', (message, error) => {
      if (error)
        this.logger.warn({ topic: message.topic, err: { message: error.message } }, 'publish failed');
      else this.metrics.mqttPublished.inc({ kind: message.retain ? 'state' : 'event' });
    });
    this.metrics.mqttOutboxDepth = () => this.publisher?.pending ?? 0;

    this.webSockets = new WebSocketServer({ noServer: true });
    const server = this.adapterHost.httpAdapter.getHttpServer();
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(request, socket, head),
    );

    if (this.config.mqttTcpPort !== undefined) {
      const tcp = createServer((socket) => broker.handle(socket));
      await new Promise<void>((resolve) => tcp.listen(this.config.mqttTcpPort, this.config.host, resolve));
      this.tcp = tcp;
    }
  }

  /** The TCP port the plain MQTT listener is bound to, when there is one. */
  tcpPort(): number | undefined {
    const address = this.tcp?.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (request.url ?? '').split('?')[0];
    if (path !== this.config.mqttWsPath || !this.webSockets || !this.broker) {
      socket.destroy();
      return;
    }
    const allowed = this.config.mqttAllowedOrigins;
    if (allowed && !allowed.includes(request.headers.origin ?? '')) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const broker = this.broker;
    this.webSockets.handleUpgrade(request, socket, head, (ws) =>
      broker.handle(createWebSocketStream(ws), request),
    );
  }

  private async authenticate(client: GrantedClient, password: Readonly<Buffer | undefined>): Promise<void> {
    let grant;
    try {
      grant = await this.tokens.verify(password?.toString('utf8') ?? '');
    } catch {
      throw refuse(BAD_USERNAME_OR_PASSWORD, 'invalid or expired token');
    }
    if (client.id !== grant.subject && !client.id.startsWith(`${grant.subject}:`)) {
      throw refuse(NOT_AUTHORIZED, 'client id does not match the token subject');
    }
    client.grant = grant;
    client.expiryTimer = setTimeout(() => client.close(), Math.max(0, grant.expiresAt - Date.now()));
    client.expiryTimer.unref();
  }

  /**
   * Before Nest closes the HTTP server, not after: the server waits for every open connection, upgraded
   * WebSockets included, so with browsers connected a close that came later never finished (Nest 12
   * runs `dispose()`, which closes the HTTP adapter, before the `onApplicationShutdown` hooks).
   */
  async beforeApplicationShutdown(): Promise<void> {
    // What the projector publishes from here on goes nowhere, rather than to a closing broker.
    this.publisher?.clear();
    this.publisher = undefined;
    this.slowSubscribers.stop();
    for (const ws of this.webSockets?.clients ?? []) ws.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => (this.broker ? this.broker.close(() => resolve()) : resolve()));
    this.webSockets?.close();
    await new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
  }

  clientCount(): number {
    return this.broker?.connectedClients ?? 0;
  }

  private publish(topic: string, payload: string, retain: boolean): void {
    this.publisher?.publish({ topic, payload, retain });
  }

  /** Publishes a customer's state (the change feed hands them over in version order). */
  publishState(state: BillingState): void {
    if (!isTopicId(state.customerId)) return;
    const payload = JSON.stringify(state);
    this.publish(customerStateTopic(state.customerId), payload, true);
    if (state.userId && isTopicId(state.userId)) this.publish(userStateTopic(state.userId), payload, true);
  }

  publishEvent(message: NotableEventProjected): void {
    if (!isTopicId(message.customerId)) return;
    const payload = JSON.stringify(message.event);
    this.publish(customerEventsTopic(message.customerId), payload, false);
    if (message.userId && isTopicId(message.userId))
      this.publish(userEventsTopic(message.userId), payload, false);
  }
}

@EventsHandler(CustomerStateChanged)
export class PushCustomerState implements IEventHandler<CustomerStateChanged> {
  constructor(private readonly broker: BillingBroker) {}

  handle(message: CustomerStateChanged): void {
    this.broker.publishState(message.state);
  }
}

@EventsHandler(NotableEventProjected)
export class PushNotableEvent implements IEventHandler<NotableEventProjected> {
  constructor(private readonly broker: BillingBroker) {}

  handle(message: NotableEventProjected): void {
    this.broker.publishEvent(message);
  }
}
