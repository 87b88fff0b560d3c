/**
 * `npm run bench:budget`: what issue 15's throughput target leaves to spend per webhook, and what each
 * server spends. On a machine where the load, the servers and PostgreSQL share the CPUs, a server's rate
 * is the cores over the CPU one event costs (its server, PostgreSQL, the load's sender), so a rate 1.5×
 * the tutorial handler's allows at most 1/1.5 of the tutorial's server and PostgreSQL CPU per event, even
 * counting the sender's CPU as free (it is not, which makes the true budget smaller). This measures that
 * CPU for five servers, each in processes of its own on one PostgreSQL cluster of the run's own (default
 * settings, fsync on), in alternating rounds: the tutorial handler (`constructEvent` and one INSERT), the
 * same handler storing nothing (the signature check and the answer: the least a verifying handler
 * costs), Paywire with its projector, two Paywire instances with the webhooks sent to the one that does
 * not project (both processes' CPU counted: the projection off the acknowledging event loop), and Paywire
 * ingesting alone (the benchmark holds the projector's lease, as in `bench:profile`; such an instance
 * also sends one coalesced NOTIFY per append, which a lone instance does not). It prints the medians per
 * event, with the acknowledgement's p50, and per level the budget beside what the signature check alone
 * and Paywire take.
 *
 * BENCH_CONCURRENCY (default 1,16,64), BENCH_EVENTS (default 3000 a round) and BENCH_ROUNDS (default 4).
 */
import pg from 'pg';
import { PROJECTOR_LEASE } from '../src/projections/billing.projector.js';
import { loadOverHttp } from './http-load.js';
import { ownPostgres } from './own-postgres.js';
import { processCpuSeconds } from './process-cpu.js';
import { machine, median, projectionCaughtUp, spawnPaywire, table } from './support.js';
import { spawnTutorial } from './tutorial-server.js';

const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);
const COUNT = Number(process.env.BENCH_EVENTS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const TARGET = 1.5;

interface Server {
  name: string;
  url: string;
  /** Its processes: their CPU is the server's. */
  pids: number[];
  /** The log Paywire's projector must have caught up with before a round ends. */
  projectedLog?: pg.Client;
}

/** Per event, in milliseconds of CPU: the server process's and PostgreSQL's (the whole cluster). */
interface Round {
  perSecond: number;
  ackP50: number;
  server: number;
  postgres: number;
}

const cluster = await ownPostgres();
const admin = new pg.Client({ connectionString: cluster.url });
await admin.connect();
const databaseUrl = async (name: string) => {
  await admin.query(`CREATE DATABASE ${name}`);
  return cluster.url.replace(/\/postgres$/, `/${name}`);
};

const projectingUrl = await databaseUrl('paywire');
const paywire = await spawnPaywire(projectingUrl);
const projectedLog = new pg.Client({ connectionString: projectingUrl });
await projectedLog.connect();
const ingestUrl = await databaseUrl('paywire_ingest');
const leaseHolder = new pg.Client({ connectionString: ingestUrl });
await leaseHolder.connect();
await leaseHolder.query(`SELECT pg_advisory_lock(${PROJECTOR_LEASE})`);
const ingestOnly = await spawnPaywire(ingestUrl);
// Started first, the projecting instance holds the lease; the webhooks go to the other.
const pairUrl = await databaseUrl('paywire_pair');
const pairProjecting = await spawnPaywire(pairUrl);
const pairFront = await spawnPaywire(pairUrl);
const pairLog = new pg.Client({ connectionString: pairUrl });
await pairLog.connect();
// The tutorial's table is a copy of the log's, beside it (as in `bench:profile`).
await projectedLog.query(`CREATE TABLE raw_events (LIKE stripe_events INCLUDING ALL)`);
const tutorial = await spawnTutorial(projectingUrl);
const signatureOnly = await spawnTutorial('', { signatureOnly: true });

const servers: Server[] = [
  { name: 'tutorial: constructEvent + one INSERT', url: tutorial.url, pids: [tutorial.child.pid!] },
  { name: 'signature check and answer only', url: signatureOnly.url, pids: [signatureOnly.child.pid!] },
  {
    name: 'Paywire (projection included)',
    url: `${paywire.url}/webhooks/stripe`,
    pids: [paywire.child.pid!],
    projectedLog,
  },
  {
    name: 'Paywire, two instances, to the one not projecting',
    url: `${pairFront.url}/webhooks/stripe`,
    pids: [pairFront.child.pid!, pairProjecting.child.pid!],
    projectedLog: pairLog,
  },
  { name: 'Paywire, ingest alone', url: `${ingestOnly.url}/webhooks/stripe`, pids: [ingestOnly.child.pid!] },
];

let offset = 0;
async function round(server: Server, concurrency: number, count: number): Promise<Round> {
  const serverCpu = () => server.pids.reduce((sum, pid) => sum + processCpuSeconds(pid, true), 0);
  const serverBefore = serverCpu();
  const postgresBefore = cluster.cpuSeconds();
  const result = await loadOverHttp(server.name, server.url, concurrency, count, (offset += 10_000_000));
  if (server.projectedLog) await projectionCaughtUp(server.projectedLog);
  return {
    perSecond: result.perSecond,
    ackP50: result.p50,
    server: ((serverCpu() - serverBefore) * 1000) / count,
    postgres: ((cluster.cpuSeconds() - postgresBefore) * 1000) / count,
  };
}

for (const server of servers) await round(server, 16, 1000);
const rows: Array<Array<string | number>> = [];
const budgets: string[] = [];
for (const concurrency of LEVELS) {
  const rounds = new Map<Server, Round[]>(servers.map((server) => [server, []]));
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) rounds.get(server)!.push(await round(server, concurrency, COUNT));
  }
  const medians = new Map(
    servers.map((server) => {
      const of = (key: keyof Round) => median(rounds.get(server)!.map((r) => r[key]));
      return [
        server,
        { perSecond: of('perSecond'), ackP50: of('ackP50'), server: of('server'), postgres: of('postgres') },
      ];
    }),
  );
  const spent = (server: Server) => medians.get(server)!.server + medians.get(server)!.postgres;
  const [tutorialHandler, signatureCheck, withProjection, toTheOther, ingestAlone] = servers;
  for (const server of servers) {
    const m = medians.get(server)!;
    rows.push([
      concurrency,
      server.name,
      Math.round(m.perSecond),
      (m.perSecond / medians.get(tutorialHandler)!.perSecond).toFixed(2),
      m.ackP50.toFixed(2),
      m.server.toFixed(3),
      m.postgres.toFixed(3),
      spent(server).toFixed(3),
    ]);
  }
  const ack = (server: Server) => medians.get(server)!.ackP50.toFixed(2);
  // One sender leaves a core idle, so CPU does not set its rate; its target is the acknowledgement's p50.
  budgets.push(
    concurrency === 1
      ? `1 sender: acknowledgement p50 ${ack(tutorialHandler)} ms for the tutorial, ${ack(signatureCheck)} for the ` +
          `signature check alone, ${ack(withProjection)} for Paywire, ${ack(toTheOther)} with its projection in the ` +
          `other instance's process, ${ack(ingestAlone)} for its ingest alone`
      : `${concurrency} senders: ${TARGET}× the tutorial allows at most ${(spent(tutorialHandler) / TARGET).toFixed(2)} ms ` +
          `of server and PostgreSQL CPU per event (its ${spent(tutorialHandler).toFixed(2)} / ${TARGET}); the signature ` +
          `check and answer alone spend ${spent(signatureCheck).toFixed(2)}, Paywire's ingest alone ` +
          `${spent(ingestAlone).toFixed(2)}, Paywire with its projection ${spent(withProjection).toFixed(2)}`,
  );
}

for (const server of [paywire, ingestOnly, pairFront, pairProjecting]) await server.stop();
for (const child of [tutorial.child, signatureOnly.child]) child.kill();
for (const client of [projectedLog, pairLog, leaseHolder, admin]) await client.end();
await cluster.destroy();

console.log(
  `\nMachine: ${machine()}; a PostgreSQL cluster of the run's own (default settings, fsync on); ` +
    `medians of ${ROUNDS} alternating rounds of ${COUNT} events\n`,
);
console.log(
  table(
    [
      'senders',
      'what',
      'events/s',
      '× tutorial',
      'ack p50 ms',
      'server CPU ms/event',
      'PostgreSQL CPU ms/event',
      'server + PostgreSQL ms/event',
    ],
    rows,
  ),
);
console.log(`\n${budgets.join('\n')}`);
