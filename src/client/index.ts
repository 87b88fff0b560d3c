/** `paywire/client`: follow a customer's or user's billing state from the browser. */
export {
  BillingConnection,
  sharedConnection,
  stateTopic,
  subscribeBillingState,
  type BillingSnapshot,
  type BillingSubscriptionOptions,
  type BillingToken,
  type ConnectionStatus,
} from './billing-client.js';
export type { BillingState, Entitlement } from '../billing/billing-state.js';
