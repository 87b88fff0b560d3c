/**
 * The only way Paywire talks to Stripe's API (SPEC section 8): the `stripe` SDK, pointed at
 * `STRIPE_API_URL` (Stripe, or `paywire fake-stripe` in development and tests), under a ceiling on
 * requests per second. The ceiling sits in the SDK's HTTP client rather than around its methods, so the
 * SDK's own retries are paced too, and so is every caller (backfill, gap healing, reconcile) sharing one
 * budget. The SDK retries connection errors, 409 and 5xx with exponential back-off and obeys
 * `Stripe-Should-Retry`; it does not retry 429 or read `Retry-After`, which this client adds: a 429 holds
 * every request back for `Retry-After` (or a back-off of its own) and is tried again, and a 5xx that names
 * a `Retry-After` is handed to the SDK's retry only after that wait.
 */
import Stripe from 'stripe';
import type { Counter } from 'prom-client';

export interface StripeApiOptions {
  secretKey: string;
  apiUrl: string;
  /** Requests per second, retries included. */
  ratePerSecond: number;
  /** Counts each response by status class and each failed connection; optional outside the server. */
  requests?: Counter<'status'>;
  maxRetries?: number;
}

type SdkHttpClient = ReturnType<typeof Stripe.createNodeHttpClient>;
type SdkResponse = Awaited<ReturnType<SdkHttpClient['makeRequest']>>;

const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Spaces requests at least 1/rate apart: never more than `rate` requests start in any second, and a
 * 429's wait applies to all of them. Hand-written because it is ten lines and must share its clock with
 * the Retry-After pause; a token-bucket library would allow bursts above the ceiling.
 */
export class RequestPacer {
  private next = 0;

  constructor(private readonly ratePerSecond: number) {}

  /** Resolves when the caller may send its request. */
  async take(): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, this.next);
    this.next = slot + 1000 / this.ratePerSecond;
    if (slot > now) await sleep(slot - now);
  }

  /** Nothing is sent before `ms` from now. */
  pause(ms: number): void {
    this.next = Math.max(this.next, Date.now() + ms);
  }
}

class PacedHttpClient implements Stripe.HttpClient {
  constructor(
    private readonly inner: SdkHttpClient,
    private readonly pacer: RequestPacer,
    private readonly maxRetries: number,
    private readonly requests?: Counter<'status'>,
  ) {}

  getClientName(): string {
    return this.inner.getClientName();
  }

  async makeRequest(...args: Parameters<SdkHttpClient['makeRequest']>): Promise<SdkResponse> {
    for (let attempt = 0; ; attempt++) {
      await this.pacer.take();
      let response: SdkResponse;
      try {
        response = await this.inner.makeRequest(...args);
      } catch (error) {
        this.requests?.inc({ status: 'connection_error' });
        throw error;
      }
      const status = response.getStatusCode();
      this.requests?.inc({ status: `${Math.floor(status / 100)}xx` });
      const wait = retryAfterMs(response.getHeaders()['retry-after']);
      if (status === 429 && attempt < this.maxRetries) {
        response.dispose?.();
        this.pacer.pause(wait ?? backoffMs(attempt));
        continue;
      }
      if (status >= 500 && wait !== undefined) await sleep(wait);
      return response;
    }
  }
}

/** The application's client (a `Stripe`), or null when `STRIPE_SECRET_KEY` is not set. */
export const STRIPE = Symbol('paywire.stripe');

/** A Stripe SDK client under the rate ceiling. */
export function createStripeApi(options: StripeApiOptions): Stripe {
  const url = new URL(options.apiUrl);
  const maxRetries = options.maxRetries ?? 8;
  return new Stripe(options.secretKey, {
    host: url.hostname,
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    protocol: url.protocol === 'https:' ? 'https' : 'http',
    maxNetworkRetries: maxRetries,
    timeout: 30_000,
    telemetry: false,
    appInfo: { name: 'paywire' },
    httpClient: new PacedHttpClient(
      Stripe.createNodeHttpClient(),
      new RequestPacer(options.ratePerSecond),
      maxRetries,
      options.requests,
    ),
  });
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/** As the SDK backs off: 0.5 s doubling, at most 8 s, with jitter. */
function backoffMs(attempt: number): number {
  const base = Math.min(500 * 2 ** attempt, 8000);
  return base * (0.5 + Math.random() * 0.5);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
