/**
 * The controllable broker of local-broker.ts, run in a Node child process: for tests whose own globals are
 * jsdom's, where Aedes cannot run (no setImmediate, browser timers). Commands go over stdin as JSON lines,
 * answers come back on stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

const SCRIPT = `
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
const broker = await Aedes.createBroker();
const server = createServer();
const sockets = new WebSocketServer({ server });
sockets.on('connection', (ws, request) => broker.handle(createWebSocketStream(ws), request));
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  if (command.publish) {
    broker.publish({ cmd: 'publish', topic: command.publish.topic, payload: JSON.stringify(command.publish.payload), qos: 1, retain: true, dup: false },
      () => console.log(JSON.stringify({ published: true })));
  } else if (command.clients) {
    console.log(JSON.stringify({ clients: broker.connectedClients }));
  }
}
`;

export interface BrokerProcess {
  url: string;
  publish(topic: string, payload: unknown): Promise<void>;
  clients(): Promise<number>;
  stop(): Promise<void>;
}

export async function startBrokerProcess(): Promise<BrokerProcess> {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--input-type=module', '-e', SCRIPT],
    { cwd: process.cwd() },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  const { port } = (await next()) as { port: number };
  const ask = async (command: unknown) => {
    child.stdin.write(`${JSON.stringify(command)}\n`);
    return next();
  };
  return {
    url: `ws://127.0.0.1:${port}`,
    publish: async (topic, payload) => void (await ask({ publish: { topic, payload } })),
    clients: async () => (await ask({ clients: true })).clients as number,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    },
  };
}
