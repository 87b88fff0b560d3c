/**
 * `npm run bench:profile`: what one webhook costs, and where, for issue 15, which asks for profiles
 * rather than wall-clock ratios on a noisy machine. On a PostgreSQL cluster of its own (nothing else
 * touches it) with `pg_stat_statements`, it sends the same signed events to the tutorial handler and to
 * Paywire (each its own process, one at a time, the projector caught up before a run ends), and prints per
 * event: the server's CPU, PostgreSQL's CPU (every process of the cluster), WAL bytes and commits; then
 * Paywire's statements (calls, execution time and WAL per event), and a CPU profile of the Paywire process
 * taken over the DevTools protocol for exactly the measured run: self time by area and the top functions.
 *
 * BENCH_CONCURRENCY (default 1,16) and BENCH_EVENTS (default 2000) choose the runs; BENCH_SPREAD=1 gives
 * each customer's events distinct seconds (by default, as in bench:ingest, they share one second);
 * BENCH_PROJECTOR=off measures ingest alone; BENCH_PROFILE=off skips the CPU profiles; BENCH_PROFILE_OUT=folder keeps each profile as `paywire-<senders>.cpuprofile` (Chrome DevTools opens it).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PROJECTOR_LEASE } from '../src/projections/billing.projector.js';
import { freePort } from './free-port.js';
import { loadOverHttp } from './http-load.js';
import { ownPostgres } from './own-postgres.js';
import { processCpuSeconds } from './process-cpu.js';
import { machine, projectionCaughtUp, spawnPaywire, table } from './support.js';
import { spawnTutorial } from './tutorial-server.js';

const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map(Number);
const COUNT = Number(process.env.BENCH_EVENTS ?? 2000);
/** The benchmark's own statements say so, and are left out of the statement table. */
const OWN = '/* bench:profile */';

interface Totals {
  serverCpu: number;
  postgresCpu: number;
  walBytes: number;
  commits: number;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** The DevTools protocol of a process started with `--inspect=host:port`, over Node's WebSocket. */
async function inspector(port: number) {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
    webSocketDebuggerUrl: string;
  }>;
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (message) => {
    const reply = JSON.parse(String(message.data)) as { id?: number; result?: unknown };
    if (reply.id !== undefined) waiting.get(reply.id)?.(reply.result);
  };
  return {
    send: <T>(method: string, params: object = {}) =>
      new Promise<T>((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve as (result: unknown) => void);
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/** Where a profiled function lives: a package, a folder of Paywire, Node itself, or the engine. */
function area(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native: V8 built-ins, JSON, crypto)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1];
  const own = /\/dist\/src\/([^/]+)\//.exec(url);
  if (own) return `paywire ${own[1]}/`;
  if (url.startsWith('node:')) return 'Node.js (node:*)';
  return url;
}

function summariseProfile(profile: CpuProfile, events: number) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const [id, micros] of self) {
    const { functionName, url, lineNumber } = byNode.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    busy += micros;
    const where = area(url, functionName);
    areas.set(where, (areas.get(where) ?? 0) + micros);
    const name = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|dist)\//, '')}:${lineNumber + 1}` : ''}`;
    functions.set(name, (functions.get(name) ?? 0) + micros);
  }
  const rows = (entries: Map<string, number>, limit: number) =>
    [...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, micros]) => [
        name,
        (micros / 1000 / events).toFixed(3),
        `${((micros / busy) * 100).toFixed(1)}%`,
      ]);
  return {
    busyMs: busy / 1000,
    areas: new Map([...areas].map(([name, micros]) => [name, micros / 1000 / events])),
    functions: rows(functions, 20),
  };
}

const cluster = await ownPostgres({
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  'pg_stat_statements.max': '2000',
  'pg_stat_statements.track_planning': 'on',
});
const admin = new pg.Client({ connectionString: cluster.url });
await admin.connect();
await admin.query(`CREATE EXTENSION pg_stat_statements`);
const databaseUrl = cluster.url.replace(/\/postgres$/, '/paywire');
await admin.query(`CREATE DATABASE paywire`);

const totals = async (serverPid: number): Promise<Totals> => {
  // Statistics reach the shared counters when a backend next reports; a second is plenty.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const [{ lsn, commits }] = (
    await admin.query<{ lsn: string; commits: string }>(
      `${OWN} SELECT pg_current_wal_lsn() - '0/0' AS lsn,
              (SELECT xact_commit FROM pg_stat_database WHERE datname = 'paywire') AS commits`,
    )
  ).rows;
  return {
    serverCpu: processCpuSeconds(serverPid, true),
    postgresCpu: cluster.cpuSeconds(),
    walBytes: Number(lsn),
    commits: Number(commits),
  };
};

const perEvent = (before: Totals, after: Totals, events: number) => ({
  serverCpuMs: ((after.serverCpu - before.serverCpu) * 1000) / events,
  postgresCpuMs: ((after.postgresCpu - before.postgresCpu) * 1000) / events,
  walBytes: (after.walBytes - before.walBytes) / events,
  commits: (after.commits - before.commits) / events,
});

const caughtUp = async (db: pg.Client) => {
  if (projecting) await projectionCaughtUp(db, OWN);
};

// BENCH_PROJECTOR=off measures ingest alone: the benchmark holds the projector's lease, so Paywire never
// projects (its instances take turns by this session lock, billing.projector.ts).
const projecting = process.env.BENCH_PROJECTOR !== 'off';
const profiling = process.env.BENCH_PROFILE !== 'off';
const leaseHolder = new pg.Client({ connectionString: databaseUrl });
if (!projecting) {
  await leaseHolder.connect();
  await leaseHolder.query(`${OWN} SELECT pg_advisory_lock(${PROJECTOR_LEASE})`);
}
const paywireInspector = await freePort();
const paywire = await spawnPaywire(databaseUrl, {
  NODE_OPTIONS: `--inspect=127.0.0.1:${paywireInspector}`,
});
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
await db.query(`${OWN} CREATE TABLE raw_events (LIKE stripe_events INCLUDING ALL)`);
const tutorialInspector = await freePort();
const tutorial = await spawnTutorial(databaseUrl, { nodeArgs: [`--inspect=127.0.0.1:${tutorialInspector}`] });
const paywireUrl = `${paywire.url}/webhooks/stripe`;
const profilers = new Map([
  [tutorial.url, await inspector(tutorialInspector)],
  [paywireUrl, await inspector(paywireInspector)],
]);
for (const devtools of profilers.values()) {
  await devtools.send('Profiler.enable');
  await devtools.send('Profiler.setSamplingInterval', { interval: 200 });
}

let offset = 0;
const spread = process.env.BENCH_SPREAD === '1';
const send = (url: string, concurrency: number, count: number) =>
  loadOverHttp(url, url, concurrency, count, (offset += 10_000_000), spread);
await send(tutorial.url, 16, 500);
await send(paywireUrl, 16, 500);
await caughtUp(db);

/** One run: its load figures and its cost per event; with `profile`, a CPU profile of it instead. */
async function measure(url: string, pid: number, concurrency: number, profile = false) {
  const before = await totals(pid);
  if (profile) await profilers.get(url)!.send('Profiler.start');
  const result = await send(url, concurrency, COUNT);
  if (url === paywireUrl) await caughtUp(db);
  const cpu = profile
    ? (await profilers.get(url)!.send<{ profile: CpuProfile }>('Profiler.stop')).profile
    : null;
  return { result, cost: perEvent(before, await totals(pid), COUNT), cpu };
}

const summary: Array<Array<string | number>> = [];
const details: string[] = [];
for (const concurrency of LEVELS) {
  // The figures come from runs without the profiler, which costs the profiled process CPU of its own.
  const tutorialRun = await measure(tutorial.url, tutorial.child.pid!, concurrency);
  await admin.query(`${OWN} SELECT pg_stat_statements_reset()`);
  const paywireRun = await measure(paywireUrl, paywire.child.pid!, concurrency);
  for (const [name, { result, cost }] of [
    ['tutorial', tutorialRun],
    [projecting ? 'Paywire (projection included)' : 'Paywire, ingest alone', paywireRun],
  ] as const)
    summary.push([
      concurrency,
      name,
      result.perSecond,
      result.p50,
      result.p99,
      cost.serverCpuMs.toFixed(3),
      cost.postgresCpuMs.toFixed(3),
      Math.round(cost.walBytes),
      cost.commits.toFixed(2),
    ]);

  const statements = await admin.query<{
    query: string;
    toplevel: boolean;
    calls: string;
    exec_ms: number;
    plan_ms: number;
    wal_bytes: string;
    rows: string;
  }>(
    `${OWN} SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, toplevel, calls, total_exec_time AS exec_ms,
            total_plan_time AS plan_ms, wal_bytes, rows
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'paywire') AND query NOT LIKE '/* bench:profile */%'
      ORDER BY total_exec_time + total_plan_time DESC LIMIT 25`,
  );

  const senders = `${concurrency} sender${concurrency === 1 ? '' : 's'}`;
  const statementTable =
    `### ${senders}: Paywire's statements (pg_stat_statements, nested ones marked ↳)\n\n` +
    table(
      ['statement', 'calls/event', 'plan ms/event', 'exec ms/event', 'WAL bytes/event', 'rows/call'],
      statements.rows.map((row) => [
        `${row.toplevel ? '' : '↳ '}\`${row.query.slice(0, 90).replaceAll('|', '\\|')}\``,
        (Number(row.calls) / COUNT).toFixed(3),
        (row.plan_ms / COUNT).toFixed(3),
        (row.exec_ms / COUNT).toFixed(3),
        Math.round(Number(row.wal_bytes) / COUNT),
        (Number(row.rows) / Number(row.calls)).toFixed(1),
      ]),
    );
  if (!profiling) {
    details.push(statementTable);
    continue;
  }
  const tutorialProfile = (await measure(tutorial.url, tutorial.child.pid!, concurrency, true)).cpu!;
  const paywireProfile = (await measure(paywireUrl, paywire.child.pid!, concurrency, true)).cpu!;
  const out = process.env.BENCH_PROFILE_OUT;
  if (out) {
    mkdirSync(out, { recursive: true });
    for (const [name, profile] of [
      ['tutorial', tutorialProfile],
      ['paywire', paywireProfile],
    ] as const)
      writeFileSync(join(out, `${name}-${concurrency}.cpuprofile`), JSON.stringify(profile));
  }
  const ours = summariseProfile(paywireProfile, COUNT);
  const theirs = summariseProfile(tutorialProfile, COUNT);
  const areas = [...new Set([...ours.areas.keys(), ...theirs.areas.keys()])]
    .map((name) => [name, ours.areas.get(name) ?? 0, theirs.areas.get(name) ?? 0] as const)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 16)
    .map(([name, mine, tutorialMs]) => [name, mine.toFixed(3), tutorialMs.toFixed(3)]);
  details.push(
    statementTable +
      `\n\n### ${senders}: main thread, self time by area (CPU profiles of a second run of each; Paywire ` +
      `${(ours.busyMs / COUNT).toFixed(3)} ms busy per event, the tutorial ${(theirs.busyMs / COUNT).toFixed(3)})\n\n` +
      table(['area', 'Paywire ms/event', 'tutorial ms/event'], areas) +
      `\n\n### ${senders}: Paywire's top functions (self time)\n\n` +
      table(['function', 'self ms/event', 'share'], ours.functions),
  );
}

for (const devtools of profilers.values()) devtools.close();
tutorial.child.kill('SIGTERM');
await paywire.stop();
await db.end();
if (!projecting) await leaseHolder.end();
await admin.end();
await cluster.destroy();

console.log(
  `\nMachine: ${machine()}; a PostgreSQL cluster of the run's own (default settings, fsync on); ${COUNT} events per run\n`,
);
console.log(
  table(
    [
      'senders',
      'what',
      'events/s',
      'ack p50 ms',
      'ack p99 ms',
      'server CPU ms/event',
      'PostgreSQL CPU ms/event',
      'WAL bytes/event',
      'commits/event',
    ],
    summary,
  ),
);
console.log(`\n${details.join('\n\n')}`);
