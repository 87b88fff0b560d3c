/**
 * Bearer `ADMIN_API_KEY` on every admin route, compared in constant time (SPEC section 4). Both sides are
 * hashed first so that `timingSafeEqual` sees equal lengths and the key's length does not leak either.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, HttpException, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CONFIG, type Config } from '../config/config.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

@Injectable()
export class AdminKeyGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(CONFIG) config: Config) {
    this.expected = digest(config.adminApiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]), this.expected)) {
      throw new HttpException({ error: 'unauthorized' }, 401);
    }
    return true;
  }
}
