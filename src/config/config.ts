/**
 * Configuration, validated once at start-up (SPEC section 1). Every variable is parsed by one zod schema so
 * that a bad value stops the process with a one-line message naming the variable, instead of surfacing as
 * a confusing failure on the first webhook. Outside production, secrets that are not configured are
 * generated once and kept in `DATA_DIR/secrets.json`, so `npm start` works on a fresh machine and a
 * restart keeps the same webhook secret, admin key and token key. In production a missing secret is fatal.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const list = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  )
  .optional();

const optionalString = z
  .string()
  .transform((value) => value.trim() || undefined)
  .optional();

const port = z.coerce.number().int().min(0).max(65535);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: optionalString.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
  ),
  DATA_DIR: z.string().min(1).default('./.paywire'),
  STRIPE_WEBHOOK_SECRET: list.pipe(
    z.array(z.string().regex(/^whsec_\S+$/, 'each secret must start with whsec_')).optional(),
  ),
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().min(1).max(86400).default(300),
  STRIPE_SECRET_KEY: optionalString,
  STRIPE_API_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s):// URL' })
    .default('https://api.stripe.com'),
  STRIPE_API_RATE: z.coerce.number().positive().max(1000).default(20),
  GAP_HEAL_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86400).default(300),
  ADMIN_API_KEY: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  MQTT_TOKEN_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  MQTT_WS_PATH: z.string().startsWith('/', 'must start with /').default('/mqtt'),
  MQTT_TCP_PORT: optionalString.pipe(
    z
      .string()
      .regex(/^\d+$/, 'must be a port number')
      .transform(Number)
      .pipe(z.number().int().min(0).max(65535))
      .optional(),
  ),
  MQTT_ALLOWED_ORIGINS: list,
  CATALOG_FILE: optionalString,
  INSTANCE_ID: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'letters, digits, _ . : - (at most 100)')
      .optional(),
  ),
  WEBHOOK_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
});

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  databaseUrl?: string;
  dataDir: string;
  webhookSecrets: string[];
  webhookToleranceSeconds: number;
  stripeSecretKey?: string;
  /** Base URL of Stripe's API: https://api.stripe.com, or a local stand-in (`paywire fake-stripe`). */
  stripeApiUrl: string;
  /** Ceiling on requests per second to Stripe's API, retries included. */
  stripeApiRate: number;
  /** 0: gap healing off. */
  gapHealIntervalSeconds: number;
  adminApiKey: string;
  mqttTokenSecret: string;
  mqttWsPath: string;
  mqttTcpPort?: number;
  mqttAllowedOrigins?: string[];
  catalogFile?: string;
  /** Names this instance in `/health/ready` and in every metric (default: host:pid). */
  instanceId: string;
  webhookBodyLimitBytes: number;
  logLevel: string;
  /** `auto`: human-readable on a terminal in development, one JSON object a line everywhere else. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** Names of the secrets that were generated for development rather than configured. */
  generatedSecrets: string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface DevSecrets {
  STRIPE_WEBHOOK_SECRET: string;
  ADMIN_API_KEY: string;
  MQTT_TOKEN_SECRET: string;
}

type SecretName = keyof DevSecrets;
const SECRET_NAMES: SecretName[] = ['STRIPE_WEBHOOK_SECRET', 'ADMIN_API_KEY', 'MQTT_TOKEN_SECRET'];

function generateDevSecrets(): DevSecrets {
  return {
    STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(24).toString('hex')}`,
    ADMIN_API_KEY: `pw_admin_${randomBytes(24).toString('hex')}`,
    MQTT_TOKEN_SECRET: randomBytes(32).toString('hex'),
  };
}

function loadDevSecrets(dataDir: string): DevSecrets {
  const file = join(dataDir, 'secrets.json');
  if (existsSync(file)) {
    return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  }
  const secrets = generateDevSecrets();
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return secrets;
}

/** Parses the environment; throws ConfigError with one line per bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${lines.join('; ')}`);
  }
  const values = parsed.data;
  const configured: Partial<Record<SecretName, string>> = {
    STRIPE_WEBHOOK_SECRET: values.STRIPE_WEBHOOK_SECRET?.join(','),
    ADMIN_API_KEY: values.ADMIN_API_KEY,
    MQTT_TOKEN_SECRET: values.MQTT_TOKEN_SECRET,
  };
  const missing = SECRET_NAMES.filter((name) => !configured[name]);
  if (missing.length > 0 && values.NODE_ENV === 'production') {
    throw new ConfigError(
      `Missing required secret${missing.length > 1 ? 's' : ''} in production: ${missing.join(', ')}`,
    );
  }
  const dataDir = resolve(values.DATA_DIR);
  const dev = missing.length > 0 ? loadDevSecrets(dataDir) : undefined;
  const secret = (name: SecretName): string => configured[name] ?? dev![name];

  return {
    nodeEnv: values.NODE_ENV,
    port: values.PORT,
    host: values.HOST,
    databaseUrl: values.DATABASE_URL,
    dataDir,
    webhookSecrets: secret('STRIPE_WEBHOOK_SECRET').split(','),
    webhookToleranceSeconds: values.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
    stripeSecretKey: values.STRIPE_SECRET_KEY,
    stripeApiUrl: values.STRIPE_API_URL,
    stripeApiRate: values.STRIPE_API_RATE,
    gapHealIntervalSeconds: values.GAP_HEAL_INTERVAL_SECONDS,
    adminApiKey: secret('ADMIN_API_KEY'),
    mqttTokenSecret: secret('MQTT_TOKEN_SECRET'),
    mqttWsPath: values.MQTT_WS_PATH,
    mqttTcpPort: values.MQTT_TCP_PORT,
    mqttAllowedOrigins: values.MQTT_ALLOWED_ORIGINS?.length ? values.MQTT_ALLOWED_ORIGINS : undefined,
    catalogFile: values.CATALOG_FILE,
    instanceId: values.INSTANCE_ID ?? `${hostname()}:${process.pid}`,
    webhookBodyLimitBytes: values.WEBHOOK_BODY_LIMIT_BYTES,
    logLevel: values.LOG_LEVEL,
    logFormat: values.LOG_FORMAT,
    generatedSecrets: missing,
  };
}

export const CONFIG = Symbol('paywire.config');
