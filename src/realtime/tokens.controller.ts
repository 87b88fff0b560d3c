/**
 * `POST /admin/tokens` (SPEC section 4): mints a browser's MQTT token for a customer or a user, so an app's
 * server can hand it to the page without holding `MQTT_TOKEN_SECRET` itself.
 */
import { Body, Controller, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AdminKeyGuard } from '../admin/admin-key.guard.js';
import { CONFIG, type Config } from '../config/config.js';
import { parseJsonBody } from '../http/json-body.js';
import { DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, MqttTokens } from './mqtt-tokens.js';
import { TOPIC_ID } from './topics.js';

const tokenRequest = z
  .object({
    customerId: z.string().regex(TOPIC_ID).optional(),
    userId: z.string().regex(TOPIC_ID).optional(),
    ttlSeconds: z.number().int().min(1).max(MAX_TTL_SECONDS).default(DEFAULT_TTL_SECONDS),
  })
  .strict()
  .refine((value) => value.customerId || value.userId, {
    path: ['customerId'],
    message: 'customerId or userId',
  });

@ApiTags('admin')
@ApiBearerAuth()
@Controller('admin/tokens')
@UseGuards(AdminKeyGuard)
export class TokensController {
  private readonly tokens: MqttTokens;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.tokens = new MqttTokens(config.mqttTokenSecret);
  }

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: "Mint a browser's MQTT token for a customer or a user" })
  @ApiBody({
    schema: {
      type: 'object',
      properties: {
        customerId: { type: 'string' },
        userId: { type: 'string' },
        ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_TTL_SECONDS },
      },
    },
  })
  @ApiResponse({ status: 200, description: '{"token","expiresAt","topics","url","clientId"}' })
  async mint(@Body() body: unknown, @Req() request: FastifyRequest) {
    const minted = await this.tokens.mint(parseJsonBody(body, tokenRequest));
    const host = request.headers.host ?? `${this.config.host}:${this.config.port}`;
    return { ...minted, url: `ws://${host}${this.config.mqttWsPath}` };
  }
}
