/**
 * Realtime (SPEC section 6): the embedded Aedes broker, the handlers that push projected states and
 * notable events to it, browser tokens, and the demo page.
 */
import { Module } from '@nestjs/common';
import { ProjectionsModule } from '../projections/projections.module.js';
import {
  BillingBroker,
  PushCustomerState,
  PushNotableEvent,
  RepublishAfterReplay,
} from './billing-broker.js';
import { DemoController } from './demo.controller.js';
import { TokensController } from './tokens.controller.js';

@Module({
  imports: [ProjectionsModule],
  controllers: [TokensController, DemoController],
  providers: [BillingBroker, PushCustomerState, PushNotableEvent, RepublishAfterReplay],
  exports: [BillingBroker],
})
export class RealtimeModule {}
