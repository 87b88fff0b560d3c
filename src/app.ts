/**
 * Building the HTTP application: Fastify under Nest, with every body read as raw bytes (the webhook's
 * signature is over the exact bytes, and a body that fails to parse must still reach the signature check
 * first) and JSON parsed only where a route wants it. Listening is separate, so tests can bind port 0.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Config } from './config/config.js';
import { openDatabase, type Sql } from './database/database.js';
import { AppModule } from './app.module.js';
import { ErrorBodyFilter } from './http/error-filter.js';
import { lingerOnEarlyAnswers } from './http/lingering-close.js';
import { createLogger, NestPinoLogger, type Logger } from './logging/logger.js';

/**
 * How much of a rejected body is read and dropped after the answer, and for how long, before the
 * connection is cut: 16 MiB covers any honest sender that overshot the 1 MiB default limit.
 */
const LINGER_MAX_BYTES = 16 * 1024 * 1024;
const LINGER_MAX_MS = 10_000;

export interface PaywireApp {
  app: NestFastifyApplication;
  sql: Sql;
  logger: Logger;
}

export async function createApp(
  config: Config,
  options: { sql?: Sql; logger?: Logger } = {},
): Promise<PaywireApp> {
  const pinoLogger = createLogger(config);
  const logger = options.logger ?? pinoLogger;
  const sql = options.sql ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir }));
  const adapter = new FastifyAdapter({
    bodyLimit: config.webhookBodyLimitBytes,
    // Fastify's router answers 414 for a path parameter over 100 characters, before the admin key is
    // checked or the id validated. Up to Node's 16 KiB request head the routes answer for themselves:
    // 401 without the key, 400 for an id that is not one.
    routerOptions: { maxParamLength: 16 * 1024 },
  });
  const fastify = adapter.getInstance();
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  lingerOnEarlyAnswers(fastify, { maxBytes: LINGER_MAX_BYTES, maxMs: LINGER_MAX_MS });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, sql, logger),
    adapter,
    {
      logger: new NestPinoLogger(pinoLogger),
      bodyParser: false,
    },
  );
  app.useGlobalFilters(new ErrorBodyFilter(logger));
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Paywire')
      .setDescription(
        'Stripe webhooks in, billing state out: the webhook, the admin API and operations endpoints.',
      )
      .setVersion('0.1.0')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/json' });
  app.enableShutdownHooks();
  return { app, sql, logger };
}

/** Listens on `host:port` (0: any free port) and returns the port actually bound. */
export async function listen(paywire: PaywireApp, port: number, host: string): Promise<number> {
  await paywire.app.listen({ port, host });
  const address = paywire.app.getHttpServer().address();
  return typeof address === 'object' && address ? address.port : port;
}
