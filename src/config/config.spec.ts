import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './config.js';

const dataDir = () => mkdtempSync(join(tmpdir(), 'paywire-config-'));

describe('configuration', () => {
  it('generates dev secrets once, keeps them private in DATA_DIR, and reuses them', () => {
    const dir = dataDir();
    const first = loadConfig({ DATA_DIR: dir });
    const second = loadConfig({ DATA_DIR: dir });
    expect(first.webhookSecrets[0]).toMatch(/^whsec_/);
    expect(second.adminApiKey).toBe(first.adminApiKey);
    expect(first.generatedSecrets).toEqual(['STRIPE_WEBHOOK_SECRET', 'ADMIN_API_KEY', 'MQTT_TOKEN_SECRET']);
    expect(statSync(join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')).MQTT_TOKEN_SECRET).toBe(
      first.mqttTokenSecret,
    );
  });

  it('refuses to start in production without a secret and names it', () => {
    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        DATA_DIR: dataDir(),
        STRIPE_WEBHOOK_SECRET: 'whsec_a',
        ADMIN_API_KEY: 'k'.repeat(20),
      }),
    ).toThrow('Missing required secret in production: MQTT_TOKEN_SECRET');
  });

  it('takes several webhook secrets for a rotation', () => {
    const config = loadConfig({ DATA_DIR: dataDir(), STRIPE_WEBHOOK_SECRET: 'whsec_new, whsec_old' });
    expect(config.webhookSecrets).toEqual(['whsec_new', 'whsec_old']);
  });

  it.each([
    ['PORT', 'http', /PORT/],
    ['STRIPE_WEBHOOK_SECRET', 'sk_live_oops', /STRIPE_WEBHOOK_SECRET.*whsec_/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL: must be a postgres/],
    ['MQTT_WS_PATH', 'mqtt', /MQTT_WS_PATH: must start with \//],
    ['STRIPE_WEBHOOK_TOLERANCE_SECONDS', '0', /STRIPE_WEBHOOK_TOLERANCE_SECONDS/],
  ])('rejects a bad %s with a one-line error naming it', (name, value, message) => {
    let error: Error | undefined;
    try {
      loadConfig({ DATA_DIR: dataDir(), [name]: value });
    } catch (caught) {
      error = caught as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain('\n');
  });
});
