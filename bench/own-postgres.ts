/**
 * A PostgreSQL cluster of a test's or a benchmark's own, made with the machine's `initdb` in a temporary
 * folder and listening on a free port, with PostgreSQL's default settings (autovacuum on, fsync on). A
 * test stops it (as a crash, `-m immediate`) and starts it again while Paywire runs against it, which the
 * shared server on 5432 must not suffer; the soak runs on it because that server is set up for tests
 * (autovacuum off). As root the cluster runs as the `postgres` user: PostgreSQL refuses to run as root.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { userInfo, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { childrenOf, processCpuSeconds } from './process-cpu.js';

const run = promisify(execFile);

/** The newest installed PostgreSQL's programs (Debian's layout), or undefined. */
function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return version ? join(root, version, 'bin') : undefined;
}

export const ownPostgresAvailable = binDir() !== undefined;

export interface OwnPostgres {
  url: string;
  start(): Promise<void>;
  /** Stops at once, as a crash would: no checkpoint, clients cut; the next start recovers from the WAL. */
  crash(): Promise<void>;
  destroy(): Promise<void>;
  /**
   * CPU seconds the cluster's processes have used so far: the postmaster, its live children, and the
   * children it has reaped (a closed connection's backend).
   */
  cpuSeconds(): number;
}

/** `settings` are passed to the server as `-c name=value` (say, `shared_preload_libraries`). */
export async function ownPostgres(settings: Record<string, string> = {}): Promise<OwnPostgres> {
  const bin = binDir();
  if (!bin) throw new Error('no PostgreSQL programs under /usr/lib/postgresql');
  const folder = mkdtempSync(join(tmpdir(), 'paywire-pg-'));
  const data = join(folder, 'data');
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(folder, Number(stdout), Number(gid));
  }
  // As root, a program runs as the `postgres` user.
  const invocation = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
  const as = (program: string, args: string[]) => run(...invocation(program, args));
  await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = [
    `-p ${port} -k ${folder} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on`,
    ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`),
  ].join(' ');
  const pgCtl = (args: string[]) => as('pg_ctl', ['-D', data, '-w', '-t', '60', ...args]);
  // A run that dies of an uncaught error must not leave its cluster running (a crashed bench:profile did):
  // it is stopped when the process exits, synchronously, as an 'exit' listener must.
  const stopAtExit = () => {
    spawnSync(...invocation('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']));
    rmSync(folder, { recursive: true, force: true });
  };
  process.once('exit', stopAtExit);
  const cluster: OwnPostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: async () => void (await pgCtl(['-o', options, '-l', join(folder, 'log'), 'start'])),
    crash: async () => void (await pgCtl(['-m', 'immediate', 'stop'])),
    destroy: async () => {
      process.off('exit', stopAtExit);
      await pgCtl(['-m', 'immediate', 'stop']).catch(() => undefined);
      rmSync(folder, { recursive: true, force: true });
    },
    cpuSeconds: () => {
      const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return childrenOf(postmaster).reduce(
        (sum, pid) => sum + processCpuSeconds(pid, false),
        processCpuSeconds(postmaster, true),
      );
    },
  };
  await cluster.start();
  return cluster;
}
