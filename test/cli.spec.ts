/**
 * The command line as a user meets it (SPEC section 7): the built CLI run as a real process. Every command
 * answers `--help` with exit 0, `paywire --help` lists them, `--version` prints the package's version, and
 * a bad option, a missing value or an unknown command is one line on stderr naming it, with exit 2.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';

const COMMANDS = ['serve', 'migrate', 'replay', 'token', 'simulate', 'backfill', 'reconcile', 'fake-stripe'];
const dataDir = mkdtempSync(join(tmpdir(), 'paywire-cli-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function paywire(...args: string[]) {
  const result = spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, DATA_DIR: dataDir, NODE_ENV: 'development' },
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('paywire --help', () => {
  it('lists every command and exits 0', () => {
    const { status, stdout } = paywire('--help');
    expect(status).toBe(0);
    for (const command of COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it.each(COMMANDS)('answers `%s --help` with its usage and exit 0', (command) => {
    const { status, stdout } = paywire(command, '--help');
    expect(status).toBe(0);
    expect(stdout).toContain(`Usage: paywire ${command}`);
  });

  it('prints the package version', () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const { status, stdout } = paywire('--version');
    expect(status).toBe(0);
    expect(stdout.trim()).toBe(version);
  });
});

describe('a command line that cannot run', () => {
  it.each([
    [['simulate', '--scenario', 'lifecycle', '--bogus'], /unknown option '--bogus'/],
    [['simulate'], /required option '--scenario <name>' not specified/],
    [['simulate', '--scenario', 'nope'], /'--scenario <name>' argument 'nope' is invalid/],
    [['simulate', '--scenario', 'many', '--customers', 'ten'], /'--customers <n>' argument 'ten' is invalid/],
    [['token', '--ttl'], /option '--ttl <seconds>' argument missing/],
    [['token', '--customer', 'cus_1', '--ttl', '86401'], /'--ttl <seconds>' argument '86401' is invalid/],
    [['token'], /one of --customer, --user or --admin is required/],
    [['token', '--customer', 'cus/../#'], /ids must match/],
    [['replay', '--url'], /option '--url <url>' argument missing/],
    [['refund'], /unknown command 'refund'/],
    [['backfill', '--since', 'yesterday'], /'--since <when>' argument 'yesterday' is invalid/],
    [['reconcile', '--customer'], /option '--customer <id>' argument missing/],
    [['fake-stripe', '--port', '70000'], /'--port <n>' argument '70000' is invalid/],
  ])('paywire %j exits 2 with one line naming the problem', (args, message) => {
    const { status, stdout, stderr } = paywire(...args);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
  });
});

it('mints a token that names its topics', () => {
  const { status, stdout } = paywire('token', '--customer', 'cus_cli', '--ttl', '60');
  expect(status).toBe(0);
  expect(JSON.parse(stdout)).toMatchObject({
    topics: ['billing/customers/cus_cli/state', 'billing/customers/cus_cli/events'],
    clientId: expect.stringMatching(/^cus_cli:/),
  });
});
