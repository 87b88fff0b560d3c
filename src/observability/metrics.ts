/**
 * Prometheus metrics (prom-client), on a registry of the application's own rather than the library's
 * global one, so that several applications in one process (the tests) do not collide. Counters are moved
 * where things happen (ingest, projector, replay); gauges that describe the database are read at scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type WebhookResult =
  'stored' | 'duplicate' | 'invalid_signature' | 'invalid_payload' | 'payload_too_large' | 'unavailable';

export class Metrics {
  readonly registry = new Registry();

  readonly webhooks = new Counter({
    name: 'paywire_webhooks_received_total',
    help: 'Webhook deliveries by event type (unknown before verification) and result',
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });

  readonly ackSeconds = new Histogram({
    name: 'paywire_webhook_ack_seconds',
    help: 'Time from a verified webhook to its answer (the append to the log, committed)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly projected = new Counter({
    name: 'paywire_events_projected_total',
    help: 'Events folded by the live projector, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly projectionLagSeconds = new Histogram({
    name: 'paywire_projection_lag_seconds',
    help: 'Time from an event being stored to its projection being committed',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });

  readonly projectionBacklog = new Gauge({
    name: 'paywire_projection_backlog_events',
    help: 'Events stored but not yet projected',
    registers: [this.registry],
  });

  readonly notificationQueueUsage = new Gauge({
    name: 'paywire_postgres_notification_queue_usage',
    help:
      "Share of PostgreSQL's notification queue in use (pg_notification_queue_usage()); it grows while a " +
      "listening connection does not read, and when it is full every projected batch's commit fails",
    registers: [this.registry],
  });

  readonly projecting = new Gauge({
    name: 'paywire_projector_leading',
    help: "1 while this instance holds the projector's lease (one instance projects at a time)",
    registers: [this.registry],
  });

  readonly replayProcessed = new Gauge({
    name: 'paywire_replay_processed_events',
    help: 'Events folded by the current or last replay',
    registers: [this.registry],
  });

  readonly replayTotal = new Gauge({
    name: 'paywire_replay_total_events',
    help: 'Events in the log when the current or last replay started',
    registers: [this.registry],
  });

  readonly replayRunning = new Gauge({
    name: 'paywire_replay_running',
    help: '1 while a replay runs',
    registers: [this.registry],
  });

  readonly mqttClients = new Gauge({
    name: 'paywire_mqtt_clients',
    help: 'Connected MQTT clients',
    registers: [this.registry],
  });

  readonly mqttPublished = new Counter({
    name: 'paywire_mqtt_messages_published_total',
    help: 'Messages published by Paywire to MQTT, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly stripeApiRequests = new Counter({
    name: 'paywire_stripe_api_requests_total',
    help: "Requests to Stripe's API (each retry counts), by status class or connection_error",
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly stripeEventsFetched = new Counter({
    name: 'paywire_stripe_events_fetched_total',
    help: "Events listed from Stripe's API by backfill or gap healing (kind), stored new or already in the log",
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  readonly gapHealRuns = new Counter({
    name: 'paywire_gap_heal_runs_total',
    help: 'Gap-healing runs by this instance, by result (done, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly gapHealLastSuccess = new Gauge({
    name: 'paywire_gap_heal_last_success_timestamp_seconds',
    help: 'When the last successful gap-healing run (by any instance) finished',
    registers: [this.registry],
  });

  readonly mqttFloodDisconnects = new Counter({
    name: 'paywire_mqtt_flood_disconnects_total',
    help: 'MQTT clients turned away for flooding: CONNECTs of one client id, or subscriptions of one connection',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly mqttSlowDisconnects = new Counter({
    name: 'paywire_mqtt_slow_disconnects_total',
    help: 'MQTT subscribers dropped because their socket stopped taking bytes (a frozen or vanished client)',
    registers: [this.registry],
  });

  /** How many messages wait in the MQTT outbox; the broker points it at its publisher. */
  mqttOutboxDepth: () => number = () => 0;

  readonly mqttOutbox: Gauge = new Gauge({
    name: 'paywire_mqtt_outbox_messages',
    help: 'Messages waiting in the ordered MQTT outbox (one publish is in flight at a time)',
    registers: [this.registry],
    // Read at scrape time, so publishing does not update a gauge per message.
    collect: (): void => this.mqttOutbox.set(this.mqttOutboxDepth()),
  });

  /** `instance` labels every series, so several instances' scrapes stay apart in one Prometheus. */
  constructor(instance = 'paywire') {
    this.registry.setDefaultLabels({ instance });
    collectDefaultMetrics({ register: this.registry, prefix: 'paywire_' });
  }
}
