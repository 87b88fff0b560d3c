/**
 * The admin REST API (SPEC section 4): customers' billing state (now and as of an instant), the log's
 * rows with their outcomes, and the replay. Every route sits behind the admin key.
 */
import {
  Controller,
  Get,
  HttpCode,
  HttpException,
  Inject,
  Param,
  Post,
  Query,
  UseGuards,
} from '@nestjs/common';
import { z } from 'zod';
import { SQL, type Sql } from '../database/database.js';
import { CustomerStateQuery } from '../projections/customer-state.query.js';
import { ReplayService } from '../projections/replay.js';
import { AdminKeyGuard } from './admin-key.guard.js';

const ID = /^[A-Za-z0-9_-]{1,255}$/;

function validId(name: string, value: string): string {
  if (!ID.test(value)) throw new HttpException({ error: 'invalid_parameter', parameter: name }, 400);
  return value;
}

const isoInstant = z.iso.datetime({ offset: true });

@Controller('admin')
@UseGuards(AdminKeyGuard)
export class AdminController {
  constructor(
    @Inject(SQL) private readonly sql: Sql,
    private readonly customers: CustomerStateQuery,
    private readonly replay: ReplayService,
  ) {}

  @Get('customers/:id')
  async customer(@Param('id') id: string) {
    const state = await this.customers.current(validId('id', id));
    if (!state) throw new HttpException({ error: 'not_found' }, 404);
    return state;
  }

  @Get('customers/:id/state')
  async customerAsOf(@Param('id') id: string, @Query('asOf') asOf: string | undefined) {
    validId('id', id);
    if (asOf === undefined) return this.customer(id);
    if (!isoInstant.safeParse(asOf).success)
      throw new HttpException({ error: 'invalid_parameter', parameter: 'asOf' }, 400);
    const state = await this.customers.asOf(id, new Date(asOf));
    if (!state) throw new HttpException({ error: 'not_found' }, 404);
    return state;
  }

  @Get('events/:id')
  async event(@Param('id') id: string) {
    const [row] = await this.sql.query<Record<string, unknown>>(
      `SELECT id, type, created, position, received_at, customer_id, object_id, outcome, reason, payload
         FROM stripe_events WHERE id = $1`,
      [validId('id', id)],
    );
    if (!row) throw new HttpException({ error: 'not_found' }, 404);
    return {
      id: row.id,
      type: row.type,
      created: new Date(row.created as string).toISOString(),
      position: Number(row.position),
      receivedAt: new Date(row.received_at as string).toISOString(),
      customerId: row.customer_id,
      objectId: row.object_id,
      outcome: row.outcome,
      reason: row.reason,
      payload: row.payload,
    };
  }

  @Post('replay')
  @HttpCode(202)
  startReplay() {
    return { jobId: this.replay.start().job.jobId };
  }

  @Get('replay/:jobId')
  replayStatus(@Param('jobId') jobId: string) {
    const job = this.replay.job(jobId);
    if (!job) throw new HttpException({ error: 'not_found' }, 404);
    return { state: job.state, processed: job.processed, total: job.total };
  }
}
