/**
 * The admin REST API (SPEC section 4): customers' billing state (now and as of an instant) with the trail
 * of events that produced it, subscriptions, entitlements, the log's rows with their outcomes, and the
 * replay. Every route sits behind the admin key; every query parameter is validated by zod, and a bad one
 * is a 400 that names it.
 */
import {
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Inject,
  Param,
  Post,
  Query,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { EVENT_SOURCES, OUTCOMES } from '../billing/event-types.js';
import { SQL, type Sql } from '../database/database.js';
import { CustomerStateQuery } from '../projections/customer-state.query.js';
import { ReplayService } from '../projections/replay.js';
import { AdminKeyGuard } from './admin-key.guard.js';
import { BadCursor } from '../database/keyset.js';
import { customerTrail, findEvent, listEvents } from '../event-log/event-pages.js';
import { listCustomers, listEntitlements, listSubscriptions } from '../projections/state-pages.js';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

const id = z.string().regex(/^[A-Za-z0-9_-]{1,255}$/);
const limit = z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE);
// PostgreSQL's text cannot hold NUL: a filter with one could match nothing, and sent on it would fail the query.
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((value) => !value.includes('\0'));
const cursor = text(1000).optional();
const instant = z.iso.datetime({ offset: true }).transform((value) => new Date(value));

const customersQuery = z.object({
  email: text(320).optional(),
  userId: id.optional(),
  limit,
  cursor,
});
const subscriptionsQuery = z.object({
  status: z
    .string()
    .regex(/^[a-z_]{1,40}$/)
    .optional(),
  customerId: id.optional(),
  limit,
  cursor,
});
const entitlementsQuery = z.object({
  feature: text(200).min(1).optional(),
  customerId: id.optional(),
  limit,
  cursor,
});
const eventsQuery = z.object({
  type: z
    .string()
    .regex(/^[a-z0-9_.]{1,200}$/)
    .optional(),
  customerId: id.optional(),
  outcome: z.enum(OUTCOMES).optional(),
  source: z.enum(EVENT_SOURCES).optional(),
  since: instant.optional(),
  until: instant.optional(),
  limit,
  cursor,
});
const asOfQuery = z.object({ asOf: instant.optional() });

function invalid(parameter: string): HttpException {
  return new HttpException({ error: 'invalid_parameter', parameter }, 400);
}

function parse<T extends z.ZodType>(schema: T, value: unknown, name = 'query'): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(String(parsed.error.issues[0]?.path[0] ?? name));
  return parsed.data;
}

async function paged<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof BadCursor) throw invalid('cursor');
    throw error;
  }
}

const notFound = () => new HttpException({ error: 'not_found' }, 404);
const pageQueries = [
  ApiQuery({
    name: 'limit',
    required: false,
    description: `page size, 1–${MAX_PAGE}, default ${DEFAULT_PAGE}`,
  }),
  ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' }),
];

function ApiPage(...queries: string[]): MethodDecorator {
  return (target, key, descriptor) => {
    for (const name of queries) ApiQuery({ name, required: false })(target, key, descriptor);
    for (const decorate of pageQueries) decorate(target, key, descriptor);
  };
}

@ApiTags('admin')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'missing or wrong admin key' })
@Controller('admin')
@UseGuards(AdminKeyGuard)
export class AdminController {
  constructor(
    @Inject(SQL) private readonly sql: Sql,
    private readonly customers: CustomerStateQuery,
    private readonly replay: ReplayService,
  ) {}

  @Get('customers')
  @ApiOperation({ summary: 'Page of customers (billing state), filtered by email or userId' })
  @ApiPage('email', 'userId')
  listCustomers(@Query() query: Record<string, unknown>) {
    const filter = parse(customersQuery, query);
    return paged(() => listCustomers(this.sql, filter));
  }

  @Get('customers/:id')
  @ApiOperation({ summary: "A customer's billing state (the MQTT payload of SPEC section 6)" })
  @ApiParam({ name: 'id', example: 'cus_123' })
  @ApiResponse({ status: 404, description: 'unknown customer' })
  async customer(@Param('id') customerId: string) {
    const state = await this.customers.current(parse(id, customerId, 'id'));
    if (!state) throw notFound();
    return state;
  }

  @Get('customers/:id/state')
  @ApiOperation({ summary: 'The state folded from the events with created ≤ asOf (ISO-8601)' })
  @ApiParam({ name: 'id' })
  @ApiQuery({ name: 'asOf', required: false, example: '2026-11-20T10:00:00Z' })
  async customerAsOf(@Param('id') customerId: string, @Query() query: Record<string, unknown>) {
    parse(id, customerId, 'id');
    const { asOf } = parse(asOfQuery, query);
    if (!asOf) return this.customer(customerId);
    const state = await this.customers.asOf(customerId, asOf);
    if (!state) throw notFound();
    return state;
  }

  @Get('customers/:id/events')
  @ApiOperation({ summary: "The customer's event trail in fold order, with each event's outcome" })
  @ApiParam({ name: 'id' })
  async customerEvents(@Param('id') customerId: string) {
    const trail = await customerTrail(this.sql, parse(id, customerId, 'id'));
    if (trail.length === 0) throw notFound();
    return { data: trail };
  }

  @Get('subscriptions')
  @ApiOperation({ summary: 'Page of subscriptions, filtered by status or customer' })
  @ApiPage('status', 'customerId')
  listSubscriptions(@Query() query: Record<string, unknown>) {
    const filter = parse(subscriptionsQuery, query);
    return paged(() => listSubscriptions(this.sql, filter));
  }

  @Get('entitlements')
  @ApiOperation({ summary: 'Who holds which feature' })
  @ApiPage('feature', 'customerId')
  listEntitlements(@Query() query: Record<string, unknown>) {
    const filter = parse(entitlementsQuery, query);
    return paged(() => listEntitlements(this.sql, filter));
  }

  @Get('events')
  @ApiOperation({ summary: 'Page of log rows, newest first, with their outcomes' })
  @ApiPage('type', 'customerId', 'outcome', 'source', 'since', 'until')
  listEvents(@Query() query: Record<string, unknown>) {
    const filter = parse(eventsQuery, query);
    return paged(() => listEvents(this.sql, filter));
  }

  @Get('events/:id')
  @ApiOperation({ summary: 'One log row with its payload' })
  @ApiParam({ name: 'id', example: 'evt_123' })
  @ApiResponse({ status: 404, description: 'unknown event' })
  async event(@Param('id') eventId: string) {
    const event = await findEvent(this.sql, parse(id, eventId, 'id'));
    if (!event) throw notFound();
    return event;
  }

  @Post('replay')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Rebuild every projection from the log; readers keep the old state until the swap',
  })
  @ApiResponse({ status: 202, description: '{"jobId": "…"}' })
  async startReplay() {
    return { jobId: (await this.replay.start()).job.jobId };
  }

  @Get('replay/:jobId')
  @ApiOperation({ summary: 'Progress of a replay, on any instance' })
  @ApiParam({ name: 'jobId' })
  async replayStatus(@Param('jobId') jobId: string) {
    const job = z.uuid().safeParse(jobId).success ? await this.replay.job(jobId) : undefined;
    if (!job) throw notFound();
    // A canceled replay ended without its result: `failed`, with the reason (SPEC's three states).
    const state = job.state === 'canceled' ? 'failed' : job.state;
    return {
      state,
      processed: job.processed,
      total: job.total,
      ...(job.state === 'canceled' ? { reason: 'canceled' } : {}),
    };
  }

  @Delete('replay/:jobId')
  @HttpCode(202)
  @ApiOperation({ summary: 'Cancel a running replay, from any instance (the old state stays)' })
  @ApiParam({ name: 'jobId' })
  @ApiResponse({ status: 202, description: '{"canceling": true}' })
  @ApiResponse({ status: 404, description: 'no such running replay' })
  async cancelReplay(@Param('jobId') jobId: string) {
    const canceling = z.uuid().safeParse(jobId).success && (await this.replay.cancel(jobId));
    if (!canceling) throw notFound();
    return { canceling: true };
  }
}
