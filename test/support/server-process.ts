/**
 * The built server (`dist/src/main.js`) as a real child process on a free port, for tests that must not
 * share an event loop with the server (socket behaviour) or that kill it (crash safety). The same
 * environment is kept across restarts, so a restarted server finds the same database and secrets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { ADMIN_KEY, WEBHOOK_SECRET } from './app.js';
import type { TestDatabase } from './database.js';
import { freePort } from '../../bench/free-port.js';

export interface ServerProcess {
  url: string;
  start(): Promise<void>;
  kill(): Promise<void>;
}

export async function serverProcess(
  db: TestDatabase,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: db.dataDir,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    ADMIN_API_KEY: ADMIN_KEY,
    MQTT_TOKEN_SECRET: 'mqtt-token-secret-for-tests-0123456789abcdef',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url ?? '',
    ...extraEnv,
  };
  let child: ChildProcess | undefined;
  return {
    url,
    async start() {
      child = spawn(process.execPath, ['dist/src/main.js'], { env, stdio: 'ignore' });
      for (let i = 0; i < 300; i++) {
        try {
          if ((await fetch(`${url}/health/live`)).ok) return;
        } catch {
          // not listening yet
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error('the server did not start');
    },
    async kill() {
      if (!child) return;
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      child = undefined;
    },
  };
}
