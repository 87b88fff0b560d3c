/**
 * `GET /metrics` in Prometheus text format; the projection backlog and PostgreSQL's notification queue
 * are read from the database at scrape.
 */
import { Controller, Get, Header } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { BillingProjector } from '../projections/billing.projector.js';
import { Metrics } from './metrics.js';

@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: Metrics,
    private readonly projector: BillingProjector,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Prometheus metrics' })
  @ApiProduces('text/plain')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    try {
      this.metrics.projectionBacklog.set((await this.projector.lag()).behind);
      this.metrics.notificationQueueUsage.set(await this.projector.notificationQueueUsage());
    } catch {
      // The database is down: the other metrics are still worth serving.
    }
    return this.metrics.registry.metrics();
  }
}
