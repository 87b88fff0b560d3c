/**
 * Liveness and readiness. `live` says the process answers; `ready` says it can do its job: the database
 * answers and the projector is keeping up (lag is reported, not judged, so an operator sees it), and gap
 * healing has succeeded within three intervals (`degraded` when not). It names the instance and says
 * whether this one holds the projector's lease (SPEC section 9).
 */
import { Controller, Get, HttpException, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { GapHealer } from '../completeness/gap-healer.js';
import { CONFIG, type Config } from '../config/config.js';
import { SQL, type Sql } from '../database/database.js';
import { BillingProjector } from '../projections/billing.projector.js';
import { BillingBroker } from '../realtime/billing-broker.js';

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SQL) private readonly sql: Sql,
    private readonly projector: BillingProjector,
    private readonly broker: BillingBroker,
    private readonly healer: GapHealer,
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
    const gapHealing = await this.healer.status();
    // Failing gap healing is reported, not made a 503: webhooks still arrive and are stored, and taking every
    // instance out of the load balancer because Stripe's API is unreachable would stop those too.
    return {
      status: gapHealing.status === 'failing' ? 'degraded' : 'ok',
      instance: this.config.instanceId,
      database: 'up',
      projector: { projecting: this.projector.projecting, ...(await this.projector.lag()) },
      broker: { clients: this.broker.clientCount() },
      gapHealing,
    };
  }
}
