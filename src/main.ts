/**
 * `npm start` / `npx paywire serve`: validate the configuration, open (and migrate) the database, serve
 * HTTP, and print what a developer needs to point the Stripe CLI at it.
 */
import { ConfigError, loadConfig } from './config/config.js';
import { CatalogError } from './billing/catalog.js';
import { createApp, listen } from './app.js';

export async function serve(): Promise<void> {
  const config = loadConfig();
  const port = await listen(await createApp(config), config.port, config.host);
  const url = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
  const lines = [
    `Paywire is listening on ${url}`,
    `  database:        ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}`}`,
    `  webhook:         POST ${url}/webhooks/stripe`,
    `  Stripe CLI:      stripe listen --forward-to localhost:${port}/webhooks/stripe`,
  ];
  if (config.generatedSecrets.length > 0) {
    lines.push(
      `  dev secrets (generated, kept in ${config.dataDir}/secrets.json; never used in production):`,
    );
    if (config.generatedSecrets.includes('STRIPE_WEBHOOK_SECRET')) {
      lines.push(`    STRIPE_WEBHOOK_SECRET=${config.webhookSecrets.join(',')}`);
      lines.push(`    (with the Stripe CLI, set STRIPE_WEBHOOK_SECRET to the whsec_ it prints instead)`);
    }
    if (config.generatedSecrets.includes('ADMIN_API_KEY'))
      lines.push(`    ADMIN_API_KEY=${config.adminApiKey}`);
    if (config.generatedSecrets.includes('MQTT_TOKEN_SECRET'))
      lines.push(`    MQTT_TOKEN_SECRET=${config.mqttTokenSecret}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

export function exitOnStartupError(error: unknown): never {
  if (error instanceof ConfigError || error instanceof CatalogError) {
    process.stderr.write(`paywire: ${error.message}\n`);
  } else {
    process.stderr.write(`paywire: failed to start: ${(error as Error)?.message ?? String(error)}\n`);
  }
  process.exit(1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  serve().catch(exitOnStartupError);
}
