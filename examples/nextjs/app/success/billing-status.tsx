'use client';
/**
 * The success page never trusts the redirect: it says "activating…" until Paywire pushes a state in which
 * the user holds the feature, whatever order Stripe's webhooks arrive in.
 */
import { useBillingState } from 'paywire/client/react';

const getToken = () => fetch('/api/billing-token', { cache: 'no-store' }).then((response) => response.json());

export function BillingStatus({ userId, feature }: { userId: string; feature: string }) {
  const { state, status } = useBillingState({ getToken, userId });
  const active = state?.entitlements.find((entitlement) => entitlement.feature === feature);
  if (!active) return <p aria-live="polite">Activating… ({status})</p>;
  return (
    <p aria-live="polite">
      You are now <strong>{feature}</strong>
      {active.until ? ` until ${new Date(active.until).toLocaleDateString()}` : ''}.
    </p>
  );
}
