/**
 * Every error answer is `{"error": "<code>"}`: no stack, no SQL, no secret ever reaches a response body
 * (SPEC section 2). Errors raised by Fastify before a route runs (body too large, unsupported media type,
 * unknown route) are mapped to the same shape; anything unexpected is logged and answered 500.
 */
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from '../logging/logger.js';

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  503: 'unavailable',
};

export function errorBody(status: number, response?: unknown): Record<string, unknown> {
  if (
    response &&
    typeof response === 'object' &&
    typeof (response as { error?: unknown }).error === 'string'
  ) {
    return response as Record<string, unknown>;
  }
  return { error: CODES[status] ?? (status >= 500 ? 'internal' : 'bad_request') };
}

@Catch()
export class ErrorBodyFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      void reply.status(status).send(errorBody(status, exception.getResponse()));
      return;
    }
    const status = (exception as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      void reply.status(status).send(errorBody(status));
      return;
    }
    this.logger.error(
      { err: { name: (exception as Error)?.name, message: (exception as Error)?.message } },
      'unhandled error',
    );
    void reply.status(500).send(errorBody(500));
  }
}
