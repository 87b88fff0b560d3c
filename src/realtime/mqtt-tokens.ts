/**
 * Short-lived MQTT tokens (SPEC section 6): HS256 JWTs signed with `MQTT_TOKEN_SECRET` (jose), carrying
 * `sub`, `exp` and either `acl.sub` (the topics the holder may subscribe to) or `role: "admin"`. A Next.js
 * server may mint the same tokens with the same secret; `POST /admin/tokens` and `paywire token` do it here.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { Grant } from './topics.js';
import { isTopicId, topicsFor } from './topics.js';

export const DEFAULT_TTL_SECONDS = 900;
export const MAX_TTL_SECONDS = 86_400;

export interface MintedToken {
  token: string;
  expiresAt: string;
  topics: string[];
  /** Client ids the broker accepts with this token: the subject, or the subject, a colon and anything. */
  clientId: string;
}

export class MqttTokens {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  async mint(request: {
    customerId?: string;
    userId?: string;
    admin?: boolean;
    ttlSeconds?: number;
  }): Promise<MintedToken> {
    const ttl = request.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS)
      throw new RangeError('ttlSeconds must be 1–86400');
    for (const id of [request.customerId, request.userId]) {
      if (id !== undefined && !isTopicId(id)) throw new RangeError('ids must match ^[A-Za-z0-9_-]{1,64}$');
    }
    const subject = request.admin ? 'admin' : (request.userId ?? request.customerId);
    if (!subject) throw new RangeError('a token needs a customerId or a userId');
    const topics = request.admin ? ['billing/#'] : topicsFor(request);
    const expiresAt = Math.floor(Date.now() / 1000) + ttl;
    const claims = request.admin ? { role: 'admin' } : { acl: { sub: topics } };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .sign(this.key);
    return {
      token,
      expiresAt: new Date(expiresAt * 1000).toISOString(),
      topics,
      clientId: `${subject}:${randomUUID().slice(0, 8)}`,
    };
  }

  /** Verifies signature, algorithm and expiry; returns what the token grants and when it ends. */
  async verify(token: string): Promise<Grant & { expiresAt: number }> {
    const { payload } = await jwtVerify(token, this.key, {
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'exp'],
    });
    const acl = (payload.acl as { sub?: unknown } | undefined)?.sub;
    const topics = Array.isArray(acl)
      ? acl.filter((topic): topic is string => typeof topic === 'string')
      : [];
    return { subject: payload.sub!, topics, admin: payload.role === 'admin', expiresAt: payload.exp! * 1000 };
  }
}
