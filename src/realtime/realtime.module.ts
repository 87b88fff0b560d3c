/**
 * Realtime (SPEC sections 6 and 9): the embedded Aedes broker, whose retained states are read from the
 * projections; the change feed that hands it every state and notable event the projector committed, on
 * whichever instance; browser tokens; and the demo page.
 */
import { Module } from '@nestjs/common';
import { ProjectionsModule } from '../projections/projections.module.js';
import { BillingBroker, PushCustomerState, PushNotableEvent } from './billing-broker.js';
import { DemoController } from './demo.controller.js';
import { FollowLocalCommits, StateFeed } from './state-feed.js';
import { TokensController } from './tokens.controller.js';

@Module({
  imports: [ProjectionsModule],
  controllers: [TokensController, DemoController],
  providers: [BillingBroker, PushCustomerState, PushNotableEvent, StateFeed, FollowLocalCommits],
  exports: [BillingBroker, StateFeed],
})
export class RealtimeModule {}
