/**
 * A JSON request body checked against a zod schema. Bodies reach controllers as raw bytes (the webhook
 * needs them unparsed, and one parser for every route keeps the body limit in one place), so each JSON
 * route parses its own: a body that is not JSON is `invalid_body`, a bad field is `invalid_parameter`
 * naming it, both 400.
 */
import { HttpException } from '@nestjs/common';
import type { z } from 'zod';

export function parseJsonBody<T extends z.ZodType>(body: unknown, schema: T): z.output<T> {
  let json: unknown;
  try {
    json = Buffer.isBuffer(body) && body.length > 0 ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    throw new HttpException({ error: 'invalid_body' }, 400);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new HttpException(
      { error: 'invalid_parameter', parameter: String(parsed.error.issues[0]?.path[0] ?? 'body') },
      400,
    );
  }
  return parsed.data;
}
