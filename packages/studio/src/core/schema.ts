import type { SqlPort } from './ports.ts';

/**
 * The job-event trigger (why: migration 10). Migration 11 rebuilds the jobs table, which drops its
 * triggers, and makes it again with the attempt record's accepted time read from the row as the
 * result leaves it: a quick job's accept may be stored by its result's UPDATE
 * (Dispatcher.handleTexts), which sets started_at then; an accept stored on its own set it before.
 */
function jobEventTrigger(acceptedAt: 'OLD.started_at' | 'NEW.started_at', ended = `NEW.status IN ('done', 'failed', 'cancelled')`): string {
  return `CREATE TRIGGER job_event_on_end AFTER UPDATE OF completed_at ON jobs
  WHEN ${ended} AND NEW.status <> OLD.status BEGIN
    INSERT INTO job_events (job_id, status, at) VALUES (NEW.id, NEW.status, NEW.updated_at);
    INSERT OR REPLACE INTO job_attempts (job_id, attempt, worker_id, offered_at, accepted_at, ended_at, outcome, error)
      SELECT OLD.id, OLD.attempt, OLD.worker_id, COALESCE(OLD.claimed_at, NEW.completed_at), ${acceptedAt}, NEW.completed_at, 'done', NULL
      WHERE NEW.status = 'done' AND OLD.worker_id IS NOT NULL;
  END;`;
}

/** `column` holds a finished job's status (done, failed, cancelled): comparisons, not an IN list (see migration 12). */
function endedCondition(column: 'status' | 'NEW.status'): string {
  return `(${column} = 'done' OR ${column} = 'failed' OR ${column} = 'cancelled')`;
}

/**
 * A finished job, as jobs_ended's condition spells it: a query must repeat it word for word for
 * SQLite to use that partial index.
 */
export const ENDED_CONDITION = endedCondition('status');

/**
 * One schema for both hosts (node:sqlite and a Durable Object's SQLite). Times are epoch
 * milliseconds; JSON columns hold text. Migrations are append-only: never edit a shipped one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE models (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    display_name TEXT,
    description TEXT,
    vram_gb_estimate REAL NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );

  CREATE TABLE registration_requests (
    id TEXT PRIMARY KEY,
    install_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    label TEXT,
    source_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    -- pending | approved | rejected | superseded
    status TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    decided_at INTEGER,
    rejection_reason TEXT,
    worker_id TEXT
  );
  CREATE INDEX registration_by_install ON registration_requests (install_id, status);

  CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    machine_name TEXT NOT NULL,
    install_id TEXT,
    -- NULL until the worker fetches its first token (the poll after approval mints it)
    token_hash TEXT,
    capabilities TEXT,
    approved_at INTEGER NOT NULL,
    last_heartbeat_at INTEGER,
    last_connected_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    cooldown_until INTEGER,
    deleted_at INTEGER
  );

  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    -- creation order, for FIFO within a priority and stable listing
    seq INTEGER NOT NULL UNIQUE,
    -- queued | claimed (offered) | running (accepted) | done | failed | cancelled
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    engine TEXT NOT NULL,
    task TEXT NOT NULL,
    model_source TEXT NOT NULL,
    vram_gb_estimate REAL NOT NULL DEFAULT 0,
    game_id TEXT NOT NULL DEFAULT '',
    asset_name TEXT NOT NULL DEFAULT '',
    prompt TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    -- claim generation (grows on every requeue); failures count against max_attempts;
    -- losses count claims whose worker vanished
    attempt INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0,
    losses INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    worker_id TEXT,
    last_worker_id TEXT,
    lease_expires_at INTEGER,
    not_before INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    progress TEXT,
    -- json | file
    result_type TEXT,
    result_json TEXT,
    result_file TEXT,
    result_ext TEXT,
    result_bytes INTEGER,
    created_at INTEGER NOT NULL,
    claimed_at INTEGER,
    started_at INTEGER,
    completed_at INTEGER,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX jobs_queue ON jobs (status, priority DESC, seq);
  CREATE INDEX jobs_held ON jobs (worker_id, status);
  CREATE INDEX jobs_lease ON jobs (status, lease_expires_at);

  CREATE TABLE job_attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    offered_at INTEGER NOT NULL,
    accepted_at INTEGER,
    ended_at INTEGER NOT NULL,
    -- done | failed | lost | handed_back | cancelled
    outcome TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (job_id, attempt)
  );

  CREATE TABLE worker_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    level TEXT NOT NULL,
    category TEXT NOT NULL,
    message TEXT NOT NULL,
    job_id TEXT,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX worker_logs_by_worker ON worker_logs (worker_id, id);
  `,
  // Partial indexes: the queue, the held claims and the leases are small next to the history of
  // finished jobs, so their indexes cover only those rows (and stay hot in the cache). Queries must
  // spell the same status condition literally for SQLite to use them.
  `
  DROP INDEX jobs_queue;
  DROP INDEX jobs_held;
  DROP INDEX jobs_lease;
  CREATE INDEX jobs_queue ON jobs (priority DESC, seq) WHERE status = 'queued';
  CREATE INDEX jobs_held ON jobs (worker_id) WHERE status IN ('claimed', 'running');
  CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status IN ('claimed', 'running');
  `,
  // A worker's record shows the userAgent of the request it was approved from (a lookup by worker).
  `
  CREATE INDEX registration_by_worker ON registration_requests (worker_id) WHERE worker_id IS NOT NULL;
  `,
  // Idempotent submission: a client's key (scoped to who sent it) names one job for good, so a
  // retried POST answers the job it already made. The hash of the request body tells a retry from a
  // reuse of the key for a different job.
  `
  CREATE TABLE job_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
  );
  `,
  // Scoped API tokens (admin | submit | read), stored as hashes; and which token made a job, for
  // the submit scope's "its own jobs" (jobs the admin token made have no row here).
  `
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE job_owners (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL
  );
  `,
  // Job events for integrations: every ending of a job (done, failed, cancelled; again after an
  // operator retry), written by a trigger in the transaction that ended it, so no code path can
  // forget one, on either host. Only endings: one row per job keeps the hot path cheap (every
  // status change would double the SQL work per job). The server-sent events stream reads them by
  // id (Last-Event-ID); they fan out into the webhook outbox, also by trigger, so a delivery exists
  // exactly when its event does.
  `
  -- A rowid key (no AUTOINCREMENT: that costs a second write per event); ids only grow as long as
  -- the newest event is never deleted, which pruning by age respects.
  CREATE TABLE job_events (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE TRIGGER job_event_on_end AFTER UPDATE OF status ON jobs
  WHEN NEW.status IN ('done', 'failed', 'cancelled') AND NEW.status <> OLD.status BEGIN
    INSERT INTO job_events (job_id, status, at) VALUES (NEW.id, NEW.status, NEW.updated_at);
  END;

  CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    -- JSON list of the statuses that are delivered (terminal ones only)
    events TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
  );
  CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    -- pending | delivered | failed (gave up after the retry window)
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (webhook_id, event_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
  CREATE TRIGGER webhook_outbox AFTER INSERT ON job_events BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id, next_at, created_at)
      SELECT id, NEW.id, NEW.at, NEW.at FROM webhooks
      WHERE deleted_at IS NULL AND EXISTS (SELECT 1 FROM json_each(webhooks.events) WHERE value = NEW.status);
  END;
  `,
  // Flat as the table grows (1,000,000 rows). The queue is indexed per (kind, engine), so a backlog
  // for one engine is never scanned by a worker of another, and by seq for the dashboard's newest-
  // first list. Backed-off jobs have their own small index (the once-a-second due check). Finished
  // jobs are indexed by status for the dashboard's filters (one insert at the right edge when a job
  // ends). Counts come from these indexes (no counter table: triggers on every status change cost
  // more per job than counting a million index entries costs per dashboard look, about 10 ms).
  `
  DROP INDEX jobs_queue;
  CREATE INDEX jobs_queue ON jobs (kind, engine, priority DESC, seq) WHERE status = 'queued';
  CREATE INDEX jobs_queued ON jobs (seq) WHERE status = 'queued';
  CREATE INDEX jobs_due ON jobs (not_before) WHERE status = 'queued' AND not_before > 0;
  CREATE INDEX jobs_ended ON jobs (status, seq) WHERE status IN ('done', 'failed', 'cancelled');

  `,
  // Pools: a model may name the pool whose workers run its jobs (NULL: the default pool).
  `
  ALTER TABLE models ADD COLUMN pool TEXT;
  `,
  // Offers not yet accepted, by when they were made: the take-back sweep and the wake-up time
  // (Housekeeping) read the oldest one directly instead of scanning every held claim. Offers are
  // answered within milliseconds, so the index holds a handful of rows.
  `
  CREATE INDEX jobs_offered ON jobs (claimed_at) WHERE status = 'claimed';
  `,
  // The job-event trigger fires on the column only endings write. `AFTER UPDATE OF status` fired on
  // every claim and accept too, and a firing copies the old and new rows (task, result and all) for
  // its WHEN before it can say no: about 2 µs per status change, ~6 µs of CPU per job
  // (bench/job-path.ts). Every ending sets completed_at (done, failed, cancelled: JobStore.complete,
  // endClaim, cancel) and nothing else sets it but retry (back to queued: WHEN says no), so the
  // events are the same rows as before.
  // The same firing writes a result's attempt record from the row as it was (OLD: who held it,
  // offered and accepted when), so storing a result is one guarded UPDATE instead of an UPDATE and
  // an INSERT … SELECT under the same guard. Other endings keep writing theirs (outcome, error).
  `
  DROP TRIGGER job_event_on_end;
  ${jobEventTrigger('OLD.started_at')}
  `,
  // Fewer B-trees per job: every index a job enters and leaves is a page written to the WAL by the
  // commit that changes it, and the create → offer path waits for that commit (bench/README.md,
  // "Fewer pages per commit"). `seq` becomes the rowid (the table was keyed by a hidden rowid, with
  // `id` and `seq` each in an index of their own: one B-tree less per insert), and the three indexes
  // of held claims (by worker, by lease, offers by time) become one covering index by worker: the
  // sweeps and the wake-up time read all held claims from it (as many as the workers' slots, never
  // the table) instead of an index each, and a claim enters and leaves one index instead of three.
  // The table is rebuilt (SQLite cannot change a rowid key in place): seconds at a million jobs, once.
  `
  CREATE TABLE jobs_new (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    engine TEXT NOT NULL,
    task TEXT NOT NULL,
    model_source TEXT NOT NULL,
    vram_gb_estimate REAL NOT NULL DEFAULT 0,
    game_id TEXT NOT NULL DEFAULT '',
    asset_name TEXT NOT NULL DEFAULT '',
    prompt TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0,
    losses INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    worker_id TEXT,
    last_worker_id TEXT,
    lease_expires_at INTEGER,
    not_before INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    progress TEXT,
    result_type TEXT,
    result_json TEXT,
    result_file TEXT,
    result_ext TEXT,
    result_bytes INTEGER,
    created_at INTEGER NOT NULL,
    claimed_at INTEGER,
    started_at INTEGER,
    completed_at INTEGER,
    updated_at INTEGER NOT NULL
  );
  INSERT INTO jobs_new (seq, id, status, model, kind, engine, task, model_source, vram_gb_estimate, game_id, asset_name, prompt, priority, attempt, failures, losses, max_attempts, worker_id, last_worker_id, lease_expires_at, not_before, last_error, progress, result_type, result_json, result_file, result_ext, result_bytes, created_at, claimed_at, started_at, completed_at, updated_at)
    SELECT seq, id, status, model, kind, engine, task, model_source, vram_gb_estimate, game_id, asset_name, prompt, priority, attempt, failures, losses, max_attempts, worker_id, last_worker_id, lease_expires_at, not_before, last_error, progress, result_type, result_json, result_file, result_ext, result_bytes, created_at, claimed_at, started_at, completed_at, updated_at FROM jobs;
  DROP TABLE jobs;
  ALTER TABLE jobs_new RENAME TO jobs;
  CREATE INDEX jobs_queue ON jobs (kind, engine, priority DESC, seq) WHERE status = 'queued';
  CREATE INDEX jobs_queued ON jobs (seq) WHERE status = 'queued';
  CREATE INDEX jobs_due ON jobs (not_before) WHERE status = 'queued' AND not_before > 0;
  CREATE INDEX jobs_ended ON jobs (status, seq) WHERE status IN ('done', 'failed', 'cancelled');
  CREATE INDEX jobs_held ON jobs (worker_id, status, lease_expires_at, claimed_at) WHERE status IN ('claimed', 'running');
  ${jobEventTrigger('NEW.started_at')}
  `,
  // No temporary B-tree per job. SQLite checks `x IN (a, b, c)` (three constants or more) by
  // building an ephemeral table of the constants each time a statement runs (two or fewer are
  // compared in line): jobs_ended's condition is checked by every INSERT and UPDATE of a job's
  // status (twice per UPDATE: the old row and the new), and the trigger's WHEN once per result, so
  // a job built and dropped six small B-trees (a page cache, a page, a hash table each): about 6 µs
  // of the ~28 µs of SQL per job (bench/README.md, "No temporary B-trees"). The same conditions as
  // comparisons; the queries that use jobs_ended spell its condition the same way (JobStore's ENDED).
  `
  DROP INDEX jobs_ended;
  CREATE INDEX jobs_ended ON jobs (status, seq) WHERE ${ENDED_CONDITION};
  DROP TRIGGER job_event_on_end;
  ${jobEventTrigger('NEW.started_at', endedCondition('NEW.status'))}
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Bring the database to the newest schema. Each migration commits with its version number. */
export function migrate(sql: SqlPort): void {
  sql.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = sql.get<{ version: number }>('SELECT MAX(version) AS version FROM schema_version');
  const current = row?.version ?? 0;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `the database has schema version ${current}, newer than this studio understands (${MIGRATIONS.length}); run a newer studio`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    sql.transaction(() => {
      sql.exec(MIGRATIONS[v] as string);
      sql.run('INSERT INTO schema_version (version) VALUES (?)', v + 1);
    });
  }
}
