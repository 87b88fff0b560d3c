/**
 * The application, assembled from one module per capability. `AppModule.forRoot` takes the validated
 * configuration and the open database, so tests and the CLI build the same application the server runs.
 */
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { AdminController } from './admin/admin.controller.js';
import { AdminKeyGuard } from './admin/admin-key.guard.js';
import { CONFIG, type Config } from './config/config.js';
import { SQL, type Sql } from './database/database.js';
import { EventLog } from './event-log/event-log.js';
import { HealthController } from './health/health.controller.js';
import { StripeWebhookController } from './ingest/stripe-webhook.controller.js';
import { Logger } from './logging/logger.js';
import { Metrics } from './observability/metrics.js';
import { MetricsController } from './observability/metrics.controller.js';
import { BillingProjector, WakeProjectorOnAppend } from './projections/billing.projector.js';
import { catalogProvider } from './projections/catalog.provider.js';
import { CustomerStateQuery } from './projections/customer-state.query.js';
import { ReplayService } from './projections/replay.js';
import {
  BillingBroker,
  PushCustomerState,
  PushNotableEvent,
  RepublishAfterReplay,
} from './realtime/billing-broker.js';
import { DemoController } from './realtime/demo.controller.js';
import { TokensController } from './realtime/tokens.controller.js';

class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(SQL) private readonly sql: Sql) {}
  async onApplicationShutdown(): Promise<void> {
    await this.sql.close();
  }
}

@Module({})
export class AppModule {
  static forRoot(config: Config, sql: Sql, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [CqrsModule.forRoot()],
      controllers: [
        StripeWebhookController,
        HealthController,
        AdminController,
        TokensController,
        MetricsController,
        DemoController,
      ],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: SQL, useValue: sql },
        { provide: Logger, useValue: logger },
        { provide: Metrics, useValue: new Metrics() },
        { provide: EventLog, useFactory: () => new EventLog(sql) },
        DatabaseLifecycle,
        catalogProvider,
        BillingProjector,
        WakeProjectorOnAppend,
        ReplayService,
        CustomerStateQuery,
        AdminKeyGuard,
        BillingBroker,
        PushCustomerState,
        PushNotableEvent,
        RepublishAfterReplay,
      ],
    };
  }
}
