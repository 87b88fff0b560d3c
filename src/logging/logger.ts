/**
 * Structured JSON logs with pino. Paywire's own code logs through `Logger` (a pino instance with the
 * redaction list applied), and Nest's framework messages go through `NestPinoLogger`, so every line on
 * stdout is one JSON object. Redaction is a last line of defence: code never logs secrets, signatures
 * or payloads at info level in the first place.
 */
import type { LoggerService } from '@nestjs/common';
import { pino, type Logger as PinoLogger } from 'pino';

export abstract class Logger {
  abstract debug(fields: object, message: string): void;
  abstract info(fields: object, message: string): void;
  abstract warn(fields: object, message: string): void;
  abstract error(fields: object, message: string): void;
}

export function createLogger(level: string): PinoLogger {
  return pino({
    level,
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
  });
}

export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: PinoLogger) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
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
