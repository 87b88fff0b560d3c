/**
 * `POST /webhooks/stripe` (SPEC section 2): verify on the raw bytes, append to the log, answer only after
 * the commit. Projection runs after the answer, woken by the append, never inside the request.
 */
import { Controller, Headers, HttpCode, HttpException, Inject, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CONFIG, type Config } from '../config/config.js';
import { EventLog } from '../event-log/event-log.js';
import { Logger } from '../logging/logger.js';
import { WebhookRejected, verifyStripeWebhook } from './stripe-webhook.js';

@Controller('webhooks')
export class StripeWebhookController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly eventLog: EventLog,
    private readonly logger: Logger,
  ) {}

  @Post('stripe')
  @HttpCode(200)
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
        this.logger.warn({ reason: error.code, bytes: body.length }, 'webhook rejected');
        throw new HttpException({ error: error.code }, 400);
      }
      throw error;
    }
    try {
      const { duplicate } = await this.eventLog.appendEvent(event);
      this.logger.debug({ eventId: event.id, eventType: event.type, duplicate }, 'webhook stored');
      return { received: true, duplicate };
    } catch (error) {
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
