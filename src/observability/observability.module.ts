/** Operations: liveness and readiness (`/health/*`) and Prometheus metrics (`/metrics`). The `Metrics`
 * registry itself is provided by the application's core module, since every capability counts into it. */
import { Module } from '@nestjs/common';
import { CompletenessModule } from '../completeness/completeness.module.js';
import { HealthController } from '../health/health.controller.js';
import { ProjectionsModule } from '../projections/projections.module.js';
import { RealtimeModule } from '../realtime/realtime.module.js';
import { MetricsController } from './metrics.controller.js';

@Module({
  imports: [ProjectionsModule, RealtimeModule, CompletenessModule],
  controllers: [HealthController, MetricsController],
})
export class ObservabilityModule {}
