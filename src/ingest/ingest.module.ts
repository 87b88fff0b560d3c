/** Ingest (SPEC section 2): `POST /webhooks/stripe` verifies and appends to the event log. */
import { Module } from '@nestjs/common';
import { EventLogModule } from '../event-log/event-log.module.js';
import { StripeWebhookController } from './stripe-webhook.controller.js';

@Module({
  imports: [EventLogModule],
  controllers: [StripeWebhookController],
})
export class IngestModule {}
