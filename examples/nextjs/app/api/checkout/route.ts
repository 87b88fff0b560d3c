/**
 * Starts a Stripe Checkout Session for the signed-in user. `metadata.userId` (and `client_reference_id`)
 * is how Paywire links the Stripe customer to this app's user, and so publishes on billing/users/{id}.
 */
import { currentUserId } from '../../session';
import { stripeClient } from '../../stripe';

export async function POST(request: Request) {
  const stripe = stripeClient();
  const userId = await currentUserId();
  // Where the browser came from, as it addressed this app (behind a proxy: the forwarded host).
  const host = request.headers.get('x-forwarded-host') ?? request.headers.get('host');
  const origin = host
    ? `${request.headers.get('x-forwarded-proto') ?? 'http'}://${host}`
    : new URL(request.url).origin;
  const session = await stripe.checkout.sessions.create({
    mode: 'subscription',
    line_items: [{ price: process.env.STRIPE_PRICE_ID ?? '', quantity: 1 }],
    client_reference_id: userId,
    metadata: { userId },
    subscription_data: { metadata: { userId } },
    success_url: `${origin}/success`,
    cancel_url: origin,
  });
  return Response.redirect(session.url!, 303);
}
