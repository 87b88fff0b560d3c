/**
 * The server's Stripe client. `STRIPE_API_URL` points it at another API than Stripe's, such as
 * `npx paywire fake-stripe` for development without a Stripe account (the same variable Paywire reads).
 */
import Stripe from 'stripe';

export function stripeClient(): Stripe {
  const api = process.env.STRIPE_API_URL ? new URL(process.env.STRIPE_API_URL) : undefined;
  return new Stripe(process.env.STRIPE_SECRET_KEY ?? '', {
    ...(api
      ? {
          host: api.hostname,
          port: api.port || (api.protocol === 'https:' ? 443 : 80),
          protocol: api.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}
