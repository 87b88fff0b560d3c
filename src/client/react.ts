/**
 * `useBillingState` (`paywire/client/react`): the live billing state of a user or customer as a React
 * hook. Built on `useSyncExternalStore`, so it never connects during server rendering (the server snapshot
 * is "no state yet") and StrictMode's double mount shares one connection through `subscribeBillingState`.
 */
import { useCallback, useRef, useSyncExternalStore } from 'react';
import {
  subscribeBillingState,
  type BillingSnapshot,
  type BillingSubscriptionOptions,
} from './billing-client.js';

const SERVER_SNAPSHOT: BillingSnapshot = { state: null, status: 'connecting' };

export function useBillingState(options: BillingSubscriptionOptions): BillingSnapshot {
  const latest = useRef<BillingSnapshot>(SERVER_SNAPSHOT);
  // The token fetcher may be a new function on every render; the subscription follows the topic only.
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const subscribe = useCallback(
    (notify: () => void) =>
      subscribeBillingState(
        { ...optionsRef.current, getToken: () => optionsRef.current.getToken() },
        (snapshot) => {
          latest.current = snapshot;
          notify();
        },
      ),
    [options.userId, options.customerId],
  );
  return useSyncExternalStore(
    subscribe,
    () => latest.current,
    () => SERVER_SNAPSHOT,
  );
}
