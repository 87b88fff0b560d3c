/**
 * The application, assembled from one Nest module per capability, so the module graph is the
 * architecture: ingest appends to the event log; projections fold it and announce changes on the
 * @nestjs/cqrs bus; realtime pushes them; admin and observability read the projections; completeness
 * fills the log's gaps from Stripe's API. `AppModule.forRoot`
 * takes the validated configuration, the open database and the logger, so tests and the CLI build the same
 * application the server runs; the core module shares them, with the metrics registry, with every module.
 */
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { AdminModule } from './admin/admin.module.js';
import { CompletenessModule } from './completeness/completeness.module.js';
import { CONFIG, type Config } from './config/config.js';
import { SQL, type Sql } from './database/database.js';
import { IngestModule } from './ingest/ingest.module.js';
import { Logger } from './logging/logger.js';
import { Metrics } from './observability/metrics.js';
import { ObservabilityModule } from './observability/observability.module.js';
import { ProjectionsModule } from './projections/projections.module.js';
import { RealtimeModule } from './realtime/realtime.module.js';

class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(SQL) private readonly sql: Sql) {}
  async onApplicationShutdown(): Promise<void> {
    await this.sql.close();
  }
}

@Module({})
class CoreModule {
  static forRoot(config: Config, sql: Sql, logger: Logger): DynamicModule {
    return {
      module: CoreModule,
      global: true,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: SQL, useValue: sql },
        { provide: Logger, useValue: logger },
        { provide: Metrics, useValue: new Metrics(config.instanceId) },
        DatabaseLifecycle,
      ],
      exports: [CONFIG, SQL, Logger, Metrics],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(config: Config, sql: Sql, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CqrsModule.forRoot(),
        CoreModule.forRoot(config, sql, logger),
        IngestModule,
        ProjectionsModule,
        RealtimeModule,
        AdminModule,
        CompletenessModule,
        ObservabilityModule,
      ],
    };
  }
}
