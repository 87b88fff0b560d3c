/**
 * Projections (SPEC sections 3 and 5): the live projector folds the log into the billing tables, the
 * replay rebuilds them, and the state query answers "what is this customer's state, now or then". It
 * announces changes on the @nestjs/cqrs event bus for the realtime module.
 */
import { Module } from '@nestjs/common';
import { EventLogModule } from '../event-log/event-log.module.js';
import { BillingProjector } from './billing.projector.js';
import { CATALOG, catalogProvider } from './catalog.provider.js';
import { CustomerStateQuery } from './customer-state.query.js';
import { ReplayService } from './replay.js';

@Module({
  imports: [EventLogModule],
  providers: [catalogProvider, BillingProjector, ReplayService, CustomerStateQuery],
  exports: [BillingProjector, ReplayService, CustomerStateQuery, CATALOG],
})
export class ProjectionsModule {}
