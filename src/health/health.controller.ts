/**
 * Liveness and readiness. `live` says the process answers; `ready` says it can do its job: the database
 * answers and the projector is keeping up (lag is reported, not judged, so an operator sees it).
 */
import { Controller, Get, HttpException, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { SQL, type Sql } from '../database/database.js';
import { BillingProjector } from '../projections/billing.projector.js';
import { BillingBroker } from '../realtime/billing-broker.js';

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(SQL) private readonly sql: Sql,
    private readonly projector: BillingProjector,
    private readonly broker: BillingBroker,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'The process answers' })
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'The database answers; reports the projector backlog' })
  async ready() {
    try {
      await this.sql.query('SELECT 1');
    } catch {
      throw new HttpException({ error: 'unavailable', database: 'down' }, 503);
    }
    return {
      status: 'ok',
      database: 'up',
      projector: await this.projector.lag(),
      broker: { clients: this.broker.clientCount() },
    };
  }
}
