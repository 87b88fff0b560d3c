/**
 * The admin routes of completeness (SPEC section 4): start and follow a backfill, and reconcile one
 * customer or all of them against Stripe. Without `STRIPE_SECRET_KEY` they answer 501 and say which
 * variable enables them.
 */
import { Body, Controller, Get, HttpCode, HttpException, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AdminKeyGuard } from '../admin/admin-key.guard.js';
import { parseJsonBody } from '../http/json-body.js';
import { TOPIC_ID } from '../realtime/topics.js';
import { ReconcileService } from './reconcile.service.js';
import { EVENT_RETENTION_SECONDS, StripeApiNotConfigured, StripeSync } from './stripe-sync.js';
import { backfillStatus } from './sync-jobs.js';

const unixOrIso = z.union([
  z.number().int().min(0),
  z
    .string()
    .regex(/^\d{1,12}$/)
    .transform(Number),
  z.iso.datetime({ offset: true }).transform((value) => Math.floor(Date.parse(value) / 1000)),
]);

const backfillRequest = z
  .object({
    since: unixOrIso
      .refine((seconds) => seconds <= Date.now() / 1000, 'since must not be in the future')
      .optional(),
  })
  .strict();

const reconcileRequest = z
  .object({ customerId: z.string().regex(TOPIC_ID).optional(), repair: z.boolean().default(false) })
  .strict();

const notConfigured = () =>
  new HttpException(
    { error: 'stripe_not_configured', message: "set STRIPE_SECRET_KEY to use Stripe's API" },
    501,
  );

async function needsStripe<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof StripeApiNotConfigured) throw notConfigured();
    throw error;
  }
}

@ApiTags('admin')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'missing or wrong admin key' })
@ApiResponse({ status: 501, description: 'STRIPE_SECRET_KEY is not set' })
@Controller('admin')
@UseGuards(AdminKeyGuard)
export class CompletenessController {
  constructor(
    private readonly sync: StripeSync,
    private readonly reconciler: ReconcileService,
  ) {}

  @Post('backfill')
  @HttpCode(202)
  @ApiOperation({ summary: "Append the events Stripe's API has since `since` and the log lacks" })
  @ApiBody({
    schema: {
      type: 'object',
      properties: { since: { description: 'ISO-8601 or unix seconds; default 30 days ago' } },
    },
  })
  @ApiResponse({ status: 202, description: '{"jobId": "…"}' })
  async startBackfill(@Body() body: unknown) {
    const { since } = parseJsonBody(body, backfillRequest);
    const from = since ?? Math.floor(Date.now() / 1000) - EVENT_RETENTION_SECONDS;
    const job = await needsStripe(() => this.sync.startBackfill(from));
    return { jobId: job.id };
  }

  @Get('backfill/:jobId')
  @ApiOperation({ summary: 'Progress of a backfill (on any instance)' })
  @ApiParam({ name: 'jobId' })
  @ApiResponse({ status: 404, description: 'unknown job' })
  async backfillStatus(@Param('jobId') jobId: string) {
    const job = z.uuid().safeParse(jobId).success ? await this.sync.job(jobId) : null;
    if (!job || job.kind !== 'backfill') throw new HttpException({ error: 'not_found' }, 404);
    return backfillStatus(job);
  }

  @Post('reconcile')
  @HttpCode(200)
  @ApiOperation({ summary: "Compare customers' state with Stripe's objects; with repair, append snapshots" })
  @ApiBody({
    schema: {
      type: 'object',
      properties: { customerId: { type: 'string' }, repair: { type: 'boolean' } },
    },
  })
  @ApiResponse({
    status: 200,
    description: '{"checked","drifted":[{"customerId","path","paywire","stripe"}],"repaired"}',
  })
  reconcile(@Body() body: unknown) {
    const request = parseJsonBody(body, reconcileRequest);
    return needsStripe(() => this.reconciler.reconcile(request));
  }
}
