/**
 * `npx paywire <command>` (SPEC section 7), also `npm run <command>`, on commander: every command answers
 * `--help` (exit 0), `paywire --help` lists them, `--version` prints the package's, and a bad option or a
 * missing value is one line naming it (exit 2). The commands themselves live in `commands.ts`.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MAX_TTL_SECONDS } from '../realtime/mqtt-tokens.js';
import { SCENARIOS } from './scenarios.js';
import { USAGE_ERROR } from './usage.js';

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const commands = () => import('./commands.js');

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max)
      throw new InvalidArgumentError(`It must be an integer from ${min} to ${max}.`);
    return parsed;
  };
}

function paywireProgram(): Command {
  const program = new Command('paywire')
    .description('Event-sourced billing state from Stripe webhooks')
    .version(version)
    // Commander exits 1 on a bad command line; 2 is what shells and the tools people know use.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : USAGE_ERROR));

  program
    .command('serve')
    .description('migrate, then serve HTTP and MQTT (same as npm start)')
    .action(async () => (await commands()).serve());

  program
    .command('migrate')
    .description('apply pending database migrations and exit')
    .action(async () => (await commands()).migrateCommand());

  program
    .command('replay')
    .description('rebuild every projection from the event log, with a progress bar')
    .option(
      '--url <url>',
      'a running Paywire to ask (default: http://HOST:PORT); else replay in this process',
    )
    .action(async (options) => (await commands()).replayCommand(options));

  program
    .command('token')
    .description('mint a browser MQTT token with MQTT_TOKEN_SECRET (prints JSON)')
    .option('--customer <id>', 'for a customer: its state and events topics')
    .option('--user <id>', 'for a user: its state and events topics')
    .option('--admin', 'for an admin: billing/#')
    .option('--ttl <seconds>', `lifetime, 1–${MAX_TTL_SECONDS} (default 900)`, integer(1, MAX_TTL_SECONDS))
    .action(async (options, command: Command) => (await commands()).tokenCommand(options, command));

  program
    .command('simulate')
    .description('send signed, realistic Stripe events to a running Paywire, offline')
    .addOption(new Option('--scenario <name>', 'the story to tell').choices(SCENARIOS).makeOptionMandatory())
    .option('--shuffle', 'send out of order and concurrently')
    .option('--duplicates', 'send every event more than once')
    .option('--customers <n>', 'customers in the "many" scenario', integer(1))
    .option('--delay <ms>', 'pause between deliveries (default 400, or 0 with --shuffle)', integer(0))
    .option('--url <url>', 'the Paywire to send to (default: http://HOST:PORT)')
    .action(async (options) => (await commands()).simulateCommand(options));

  program
    .command('backfill')
    .description("append the events Stripe's API has and the log lacks, with a progress bar")
    .option('--since <when>', 'ISO-8601 or unix seconds (default: 30 days ago)', since)
    .option('--url <url>', 'a running Paywire to ask (default: http://HOST:PORT); else run in this process')
    .action(async (options) => (await commands()).backfillCommand(options));

  program
    .command('reconcile')
    .description("compare customers' state with Stripe's objects and report each difference")
    .option('--customer <id>', 'one customer (default: every customer, paged)')
    .option('--repair', 'append the fetched objects as snapshot events to fix the differences')
    .option('--url <url>', 'a running Paywire to ask (default: http://HOST:PORT); else run in this process')
    .action(async (options) => (await commands()).reconcileCommand(options));

  program
    .command('fake-stripe')
    .description("a local stand-in for Stripe's API and checkout that sends signed webhooks (development)")
    .option('--port <n>', 'listen port (default 12111)', integer(0, 65535), 12111)
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--webhook-url <url>', "where to send webhooks (default: this machine's Paywire)")
    .option('--webhook-secret <whsec>', 'signing secret (default: the first of STRIPE_WEBHOOK_SECRET)')
    .option('--drop-webhooks', 'record events but send no webhooks (gap healing must find them)')
    .option('--delay-webhooks <ms>', 'hold each webhook this long', integer(0), 0)
    .action(async (options) => (await commands()).fakeStripeCommand(options));

  return program;
}

function since(value: string): number {
  if (/^\d{1,12}$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw new InvalidArgumentError('It must be ISO-8601 or unix seconds.');
  return Math.floor(parsed / 1000);
}

paywireProgram()
  .parseAsync(process.argv)
  .catch(async (error: unknown) => (await import('../main.js')).exitOnStartupError(error));
