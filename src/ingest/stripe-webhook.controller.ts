/**
 * `POST /webhooks/stripe` (SPEC section 2): verify on the raw bytes, append to the log, answer only after
 * the commit. Projection runs after the answer, woken by the append, never inside the request.
 */
import { Controller, Headers, HttpCode, HttpException, Inject, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { CONFIG, type Config } from '../config/config.js';
import { EventLog } from '../event-log/event-log.js';
import { Logger } from '../logging/logger.js';
import { Metrics } from '../observability/metrics.js';
import { WebhookRejected, verifyStripeWebhook } from './stripe-webhook.js';

@ApiTags('ingest')
@Controller('webhooks')
export class StripeWebhookController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly eventLog: EventLog,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  @Post('stripe')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Receive a Stripe webhook: verify on the raw bytes, append to the log, answer after the commit',
  })
  @ApiHeader({ name: 'stripe-signature', required: true, description: 't=…,v1=… as Stripe sends it' })
  @ApiBody({ description: 'the Stripe event, exactly as Stripe signed it', schema: { type: 'object' } })
  @ApiResponse({ status: 200, description: '{"received":true,"duplicate":false|true}' })
  @ApiResponse({ status: 400, description: '{"error":"invalid_signature"} or {"error":"invalid_payload"}' })
  @ApiResponse({ status: 413, description: '{"error":"payload_too_large"}' })
  @ApiResponse({ status: 503, description: '{"error":"unavailable"}: not stored, Stripe retries' })
  async receive(@Req() request: FastifyRequest, @Headers('stripe-signature') signature: string | undefined) {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    let event;
    try {
      event = verifyStripeWebhook(body, signature, {
        secrets: this.config.webhookSecrets,
        toleranceSeconds: this.config.webhookToleranceSeconds,
      });
    } catch (error) {
      if (error instanceof WebhookRejected) {
        this.metrics.webhooks.inc({ type: 'unknown', result: error.code });
        this.logger.warn({ reason: error.code, bytes: body.length }, 'webhook rejected');
        throw new HttpException({ error: error.code }, 400);
      }
      throw error;
    }
    const stopTimer = this.metrics.ackSeconds.startTimer();
    try {
      const { duplicate } = await this.eventLog.appendEvent(event);
      stopTimer();
      this.metrics.webhooks.inc({ type: event.type, result: duplicate ? 'duplicate' : 'stored' });
      this.logger.debug({ eventId: event.id, eventType: event.type, duplicate }, 'webhook stored');
      return { received: true, duplicate };
    } catch (error) {
      this.metrics.webhooks.inc({ type: event.type, result: 'unavailable' });
      this.logger.error(
        {
          eventId: event.id,
          eventType: event.type,
          err: { code: (error as { code?: unknown }).code, message: (error as Error).message },
        },
        'event log unavailable, answering 503 so Stripe retries',
      );
      throw new HttpException({ error: 'unavailable' }, 503);
    }
  }
}
