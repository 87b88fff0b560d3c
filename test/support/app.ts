/** Starts the real application on a real port (0: any free one) against a test database. */
import { createApp, listen, type PaywireApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { Logger } from '../../src/logging/logger.js';
import { BillingProjector } from '../../src/projections/billing.projector.js';
import type Stripe from 'stripe';
import { expect } from '@jest/globals';
import type { TestDatabase } from './database.js';
import { sendEvent } from './stripe.js';

export const WEBHOOK_SECRET = 'whsec_test_paywire_current';
export const OLD_WEBHOOK_SECRET = 'whsec_test_paywire_previous';
export const ADMIN_KEY = 'admin-key-for-tests-0123456789';

export interface RunningApp extends PaywireApp {
  url: string;
  config: Config;
  projector: BillingProjector;
  /** Sends each event signed, one after another, expecting 200 for each. */
  deliver(...events: Stripe.Event[]): Promise<void>;
  /** Wakes the projector and waits until it has folded everything stored so far. */
  settle(): Promise<void>;
  /** `deliver`, then `settle`. */
  deliverFolded(...events: Stripe.Event[]): Promise<void>;
  close(): Promise<void>;
}

export async function startApp(
  db: TestDatabase,
  env: Record<string, string> = {},
  options: { logger?: Logger } = {},
): Promise<RunningApp> {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: db.dataDir,
    STRIPE_WEBHOOK_SECRET: `${WEBHOOK_SECRET},${OLD_WEBHOOK_SECRET}`,
    ADMIN_API_KEY: ADMIN_KEY,
    MQTT_TOKEN_SECRET: 'mqtt-token-secret-for-tests-0123456789abcdef',
    LOG_LEVEL: 'silent',
    ...(db.url ? { DATABASE_URL: db.url } : {}),
    ...env,
  });
  const paywire = await createApp(config, options);
  const port = await listen(paywire, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const projector = paywire.app.get(BillingProjector);
  const deliver = async (...events: Stripe.Event[]) => {
    for (const event of events) expect((await sendEvent(url, event, WEBHOOK_SECRET)).status).toBe(200);
  };
  const settle = async () => {
    projector.wake();
    await projector.idle();
  };
  return {
    ...paywire,
    config,
    url,
    projector,
    deliver,
    settle,
    deliverFolded: async (...events) => {
      await deliver(...events);
      await settle();
    },
    close: () => paywire.app.close(),
  };
}
