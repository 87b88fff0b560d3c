/** Starts the real application on a real port (0: any free one) against a test database. */
import { createApp, type PaywireApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { Logger } from '../../src/logging/logger.js';
import { BillingProjector } from '../../src/projections/billing.projector.js';
import type { TestDatabase } from './database.js';

export const WEBHOOK_SECRET = 'whsec_test_paywire_current';
export const OLD_WEBHOOK_SECRET = 'whsec_test_paywire_previous';
export const ADMIN_KEY = 'admin-key-for-tests-0123456789';

export interface RunningApp extends PaywireApp {
  url: string;
  config: Config;
  projector: BillingProjector;
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
  await paywire.app.listen({ port: 0, host: '127.0.0.1' });
  const address = paywire.app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    ...paywire,
    config,
    url: `http://127.0.0.1:${port}`,
    projector: paywire.app.get(BillingProjector),
    close: () => paywire.app.close(),
  };
}
