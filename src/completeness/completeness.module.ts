/**
 * Completeness against Stripe's API (SPEC section 8): backfill jobs, gap healing on a timer and reconcile,
 * all through the one rate-limited SDK client, which exists only when `STRIPE_SECRET_KEY` is set.
 */
import { Module } from '@nestjs/common';
import { CONFIG, type Config } from '../config/config.js';
import { EventLogModule } from '../event-log/event-log.module.js';
import { Metrics } from '../observability/metrics.js';
import { ProjectionsModule } from '../projections/projections.module.js';
import { STRIPE, createStripeApi } from '../stripe-api/stripe-api.js';
import { CompletenessController } from './completeness.controller.js';
import { GapHealer } from './gap-healer.js';
import { ReconcileService } from './reconcile.service.js';
import { StripeSync } from './stripe-sync.js';

@Module({
  imports: [EventLogModule, ProjectionsModule],
  providers: [
    {
      provide: STRIPE,
      inject: [CONFIG, Metrics],
      useFactory: (config: Config, metrics: Metrics) =>
        config.stripeSecretKey
          ? createStripeApi({
              secretKey: config.stripeSecretKey,
              apiUrl: config.stripeApiUrl,
              ratePerSecond: config.stripeApiRate,
              requests: metrics.stripeApiRequests,
            })
          : null,
    },
    StripeSync,
    GapHealer,
    ReconcileService,
  ],
  controllers: [CompletenessController],
  exports: [StripeSync, GapHealer, ReconcileService],
})
export class CompletenessModule {}
