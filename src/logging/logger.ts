/**
 * Structured logs with pino. Paywire's own code logs through `Logger` (a pino instance with the
 * redaction list applied), and Nest's framework messages go through `NestPinoLogger`, so every line comes
 * from one place. In production and under a process manager each line is one JSON object; on a developer's
 * terminal pino-pretty renders them in colour. Pretty printing runs in this thread, synchronously, rather
 * than as a pino transport (a worker thread), so log lines and the start-up banner written to stdout appear
 * in the order they were written. Redaction is a last line of defence: code never logs secrets,
 * signatures or payloads at info level in the first place.
 */
import type { LoggerService } from '@nestjs/common';
import { pino, type Logger as PinoLogger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import type { Config } from '../config/config.js';

export abstract class Logger {
  abstract debug(fields: object, message: string): void;
  abstract info(fields: object, message: string): void;
  abstract warn(fields: object, message: string): void;
  abstract error(fields: object, message: string): void;
}

/** Pretty only when asked, or by default in development on a terminal. */
export function prettyLogs(config: Pick<Config, 'logFormat' | 'nodeEnv'>, isTTY: boolean): boolean {
  if (config.logFormat !== 'auto') return config.logFormat === 'pretty';
  return config.nodeEnv === 'development' && isTTY;
}

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat' | 'nodeEnv'>): PinoLogger {
  const stream = prettyLogs(config, Boolean(process.stdout.isTTY))
    ? PinoPretty({
        sync: true,
        ignore: 'pid,hostname,service,context',
        messageFormat: '{if context}[{context}] {end}{msg}',
        translateTime: 'SYS:HH:MM:ss.l',
      })
    : undefined;
  const options = {
    level: config.logLevel,
    base: { service: 'paywire' },
    redact: {
      paths: [
        'secret',
        '*.secret',
        'authorization',
        '*.authorization',
        'signature',
        '*.signature',
        'payload',
        '*.payload',
        'token',
      ],
      censor: '[redacted]',
    },
  };
  return stream ? pino(options, stream) : pino(options);
}

/** Nest's start-up chatter (one line per module and route): useful when debugging, noise otherwise. */
const NEST_BOOTSTRAP_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
]);

export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: PinoLogger) {}
  log(message: unknown, context?: string) {
    if (context && NEST_BOOTSTRAP_CONTEXTS.has(context)) this.logger.debug({ context }, String(message));
    else this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}
