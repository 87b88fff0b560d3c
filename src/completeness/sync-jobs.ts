/**
 * Backfill and gap-healing runs as rows of `stripe_sync_jobs`, so a job is readable from any process and
 * outlives the one running it. A runner owns a job while it keeps `heartbeat_at` fresh; a job whose owner
 * stopped beating, or whose owner was a process on this host that no longer exists, is adopted by the next
 * runner that looks, and continues from its stored cursor.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { SqlExecutor } from '../database/database.js';

export type SyncJobKind = 'backfill' | 'heal';
export type SyncJobState = 'running' | 'done' | 'failed';

export interface SyncJob {
  id: string;
  kind: SyncJobKind;
  state: SyncJobState;
  /** Unix seconds. */
  since: number;
  /** Unix seconds: every event Stripe listed with `created` below it is in the log. */
  cursor: number;
  fetched: number;
  stored: number;
  duplicates: number;
  error: string | null;
  owner: string | null;
  startedAt: Date;
  finishedAt: Date | null;
}

export interface JobProgress {
  cursor: number;
  fetched: number;
  stored: number;
  duplicates: number;
}

/** How long a runner may go without a heartbeat before its job is someone else's to finish. */
export const HEARTBEAT_SECONDS = 2;
const ORPHANED_AFTER_SECONDS = 15;

/** This process: host, pid and a nonce, so a restarted process with a recycled pid is not its predecessor. */
export const RUNNER_ID = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

interface JobRow {
  id: string;
  kind: SyncJobKind;
  state: SyncJobState;
  since: string;
  cursor: string;
  fetched: string;
  stored: string;
  duplicates: string;
  error: string | null;
  owner: string | null;
  started_at: Date;
  finished_at: Date | null;
  heartbeat_age: number | null;
}

const COLUMNS = `id, kind, state, since, cursor, fetched, stored, duplicates, error, owner, started_at, finished_at,
  extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age`;

function toJob(row: JobRow): SyncJob {
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    since: Number(row.since),
    cursor: Number(row.cursor),
    fetched: Number(row.fetched),
    stored: Number(row.stored),
    duplicates: Number(row.duplicates),
    error: row.error,
    owner: row.owner,
    startedAt: new Date(row.started_at),
    finishedAt: row.finished_at ? new Date(row.finished_at) : null,
  };
}

/** What the admin API and the CLI show of a backfill (SPEC section 4), times as ISO-8601. */
export function backfillStatus(job: SyncJob) {
  return {
    state: job.state,
    fetched: job.fetched,
    stored: job.stored,
    duplicates: job.duplicates,
    ...(job.error ? { error: job.error } : {}),
    since: new Date(job.since * 1000).toISOString(),
    cursor: new Date(job.cursor * 1000).toISOString(),
    startedAt: job.startedAt.toISOString(),
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}

export type BackfillStatus = ReturnType<typeof backfillStatus>;

/** Inserts a running job owned by this process; null when `kind` admits one at a time and one runs. */
export async function createJob(db: SqlExecutor, kind: SyncJobKind, since: number): Promise<SyncJob | null> {
  const [row] = await db.query<JobRow>(
    `INSERT INTO stripe_sync_jobs (id, kind, since, cursor, owner, heartbeat_at)
     VALUES ($1, $2, $3, $3, $4, now())
     ON CONFLICT DO NOTHING
     RETURNING ${COLUMNS}`,
    [randomUUID(), kind, since, RUNNER_ID],
  );
  return row ? toJob(row) : null;
}

export async function findJob(db: SqlExecutor, id: string): Promise<SyncJob | null> {
  const [row] = await db.query<JobRow>(`SELECT ${COLUMNS} FROM stripe_sync_jobs WHERE id = $1`, [id]);
  return row ? toJob(row) : null;
}

/** Records progress; false when the job is no longer this runner's (another adopted it). */
export async function saveProgress(db: SqlExecutor, id: string, progress: JobProgress): Promise<boolean> {
  const rows = await db.query(
    `UPDATE stripe_sync_jobs SET cursor = $2, fetched = $3, stored = $4, duplicates = $5, heartbeat_at = now()
      WHERE id = $1 AND owner = $6 AND state = 'running' RETURNING id`,
    [id, progress.cursor, progress.fetched, progress.stored, progress.duplicates, RUNNER_ID],
  );
  return rows.length > 0;
}

export async function heartbeat(db: SqlExecutor, id: string): Promise<void> {
  await db.query(`UPDATE stripe_sync_jobs SET heartbeat_at = now() WHERE id = $1 AND owner = $2`, [
    id,
    RUNNER_ID,
  ]);
}

export async function finishJob(db: SqlExecutor, id: string, error: string | null): Promise<void> {
  await db.query(
    `UPDATE stripe_sync_jobs SET state = $2, error = $3, finished_at = now(), heartbeat_at = NULL
      WHERE id = $1 AND owner = $4`,
    [id, error === null ? 'done' : 'failed', error, RUNNER_ID],
  );
}

/** Running jobs of `kind` whose runner is gone, now owned by this process. */
export async function adoptOrphans(db: SqlExecutor, kind: SyncJobKind): Promise<SyncJob[]> {
  const running = (
    await db.query<JobRow>(`SELECT ${COLUMNS} FROM stripe_sync_jobs WHERE state = 'running' AND kind = $1`, [
      kind,
    ])
  ).filter((row) => isOrphaned(row.owner, row.heartbeat_age));
  const adopted: SyncJob[] = [];
  for (const row of running) {
    // Compare-and-set on the owner: of two runners adopting at once, one wins.
    const [claimed] = await db.query<JobRow>(
      `UPDATE stripe_sync_jobs SET owner = $2, heartbeat_at = now()
        WHERE id = $1 AND state = 'running' AND owner IS NOT DISTINCT FROM $3
        RETURNING ${COLUMNS}`,
      [row.id, RUNNER_ID, row.owner],
    );
    if (claimed) adopted.push(toJob(claimed));
  }
  return adopted;
}

/** The latest finished run of `kind` that succeeded. */
export async function lastSucceeded(db: SqlExecutor, kind: SyncJobKind): Promise<SyncJob | null> {
  const [row] = await db.query<JobRow>(
    `SELECT ${COLUMNS} FROM stripe_sync_jobs WHERE kind = $1 AND state = 'done' ORDER BY finished_at DESC LIMIT 1`,
    [kind],
  );
  return row ? toJob(row) : null;
}

/** Forgets finished runs of `kind` older than `days` (gap healing leaves one row per interval). */
export async function pruneFinished(db: SqlExecutor, kind: SyncJobKind, days: number): Promise<void> {
  await db.query(
    `DELETE FROM stripe_sync_jobs WHERE kind = $1 AND state <> 'running' AND finished_at < now() - make_interval(days => $2)`,
    [kind, days],
  );
}

function isOrphaned(owner: string | null, heartbeatAge: number | null): boolean {
  if (owner === RUNNER_ID) return false;
  if (owner === null || heartbeatAge === null || heartbeatAge > ORPHANED_AFTER_SECONDS) return true;
  const [host, pid] = owner.split(':');
  return host === hostname() && !processExists(Number(pid));
}

function processExists(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
