import type { JobStatus, TaskKind } from '@studio-worker/protocol';
import type { SqlPort, SqlValue } from './ports.ts';

/** A `jobs` row as stored. JSON columns are text. */
export interface JobRow {
  id: string;
  seq: number;
  status: JobStatus;
  model: string;
  kind: TaskKind;
  engine: string;
  task: string;
  model_source: string;
  vram_gb_estimate: number;
  game_id: string;
  asset_name: string;
  prompt: string;
  priority: number;
  attempt: number;
  failures: number;
  losses: number;
  max_attempts: number;
  worker_id: string | null;
  last_worker_id: string | null;
  lease_expires_at: number | null;
  not_before: number;
  last_error: string | null;
  progress: string | null;
  /** `expired`: the retention policy deleted the result (the job keeps its metadata). */
  result_type: 'json' | 'file' | 'expired' | null;
  result_json: string | null;
  result_file: string | null;
  result_ext: string | null;
  result_bytes: number | null;
  created_at: number;
  claimed_at: number | null;
  started_at: number | null;
  completed_at: number | null;
  updated_at: number;
}

/** A job's result as stored: JSON text in the row, or a file under the host's results directory. */
export type StoredResult = { type: 'json'; json: string } | { type: 'file'; file: string; ext: string; bytes: number };

/** What an attempt record needs from the job row. */
export type AttemptTimes = Pick<JobRow, 'id' | 'attempt' | 'claimed_at' | 'started_at'>;

/** What `claim` wrote: who holds the job, since when, until when. */
export interface ClaimMade {
  workerId: string;
  now: number;
  leaseExpiresAt: number;
}

/** The columns an offer needs. */
export interface OfferRow {
  id: string;
  attempt: number;
  model: string;
  game_id: string;
  asset_name: string;
  vram_gb_estimate: number;
  task: string;
  model_source: string;
}

export interface NewJob {
  id: string;
  seq: number;
  model: string;
  kind: TaskKind;
  engine: string;
  task: string;
  modelSource: string;
  vramGbEstimate: number;
  gameId: string;
  assetName: string;
  prompt: string;
  priority: number;
  maxAttempts: number;
  now: number;
}

/** The counters of a job carried over from another studio (see transfer.ts). */
export interface CarriedCounters {
  attempt: number;
  failures: number;
  losses: number;
  notBefore: number;
  lastError: string | null;
}

const OFFER_COLUMNS = 'id, attempt, model, game_id, asset_name, vram_gb_estimate, task, model_source';
const HELD = `status IN ('claimed', 'running')`;
/** Spelled as jobs_ended's condition, so SQLite may use that partial index. */
const ENDED = `status IN ('done', 'failed', 'cancelled')`;

/**
 * Every statement about a job's life in the `jobs` table (done jobs read or expired as a whole are
 * FinishedJobStore's, scrape reads MetricsStore's). Each state change is one guarded UPDATE (a
 * compare-and-set on status, worker and attempt), so a stale or duplicate message changes nothing.
 */
export class JobStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  /** Every job not ended yet, oldest first, as stored (`SELECT *`: older schemas read too; the export). */
  unfinished(): JobRow[] {
    return this.sql.all<JobRow>(`SELECT * FROM jobs WHERE status IN ('queued', 'claimed', 'running') ORDER BY seq`);
  }

  maxSeq(): number {
    return this.sql.get<{ s: number | null }>('SELECT MAX(seq) AS s FROM jobs')?.s ?? 0;
  }

  /**
   * A new job: queued, or (with `claim`) already claimed, as `claim()` would leave it. `carried`:
   * a queued job moved from another studio (import), with its counters.
   */
  insert(job: NewJob, claim?: ClaimMade, carried?: CarriedCounters): void {
    this.sql.run(
      `INSERT INTO jobs (id, seq, status, model, kind, engine, task, model_source, vram_gb_estimate, game_id,
         asset_name, prompt, priority, attempt, failures, losses, max_attempts, not_before, last_error, created_at, updated_at,
         worker_id, last_worker_id, claimed_at, lease_expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      job.id,
      job.seq,
      claim ? 'claimed' : 'queued',
      job.model,
      job.kind,
      job.engine,
      job.task,
      job.modelSource,
      job.vramGbEstimate,
      job.gameId,
      job.assetName,
      job.prompt,
      job.priority,
      carried?.attempt ?? 1,
      carried?.failures ?? 0,
      carried?.losses ?? 0,
      job.maxAttempts,
      carried?.notBefore ?? 0,
      carried?.lastError ?? null,
      job.now,
      claim?.now ?? job.now,
      claim?.workerId ?? null,
      claim?.workerId ?? null,
      claim?.now ?? null,
      claim?.leaseExpiresAt ?? null,
    );
  }

  /** The offer columns of a job just inserted (attempt 1). */
  static offerRowOf(job: NewJob): OfferRow {
    return {
      id: job.id,
      attempt: 1,
      model: job.model,
      game_id: job.gameId,
      asset_name: job.assetName,
      vram_gb_estimate: job.vramGbEstimate,
      task: job.task,
      model_source: job.modelSource,
    };
  }

  get(id: string): JobRow | undefined {
    return this.sql.get<JobRow>('SELECT * FROM jobs WHERE id = ?', id);
  }

  /** The row `insert(job)` writes, as `get` would read it back (the API answers it without a read; a test holds them equal). */
  static insertedRow(job: NewJob): JobRow {
    return {
      id: job.id,
      seq: job.seq,
      status: 'queued',
      model: job.model,
      kind: job.kind,
      engine: job.engine,
      task: job.task,
      model_source: job.modelSource,
      vram_gb_estimate: job.vramGbEstimate,
      game_id: job.gameId,
      asset_name: job.assetName,
      prompt: job.prompt,
      priority: job.priority,
      attempt: 1,
      failures: 0,
      losses: 0,
      max_attempts: job.maxAttempts,
      worker_id: null,
      last_worker_id: null,
      lease_expires_at: null,
      not_before: 0,
      last_error: null,
      progress: null,
      result_type: null,
      result_json: null,
      result_file: null,
      result_ext: null,
      result_bytes: null,
      created_at: job.now,
      claimed_at: null,
      started_at: null,
      completed_at: null,
      updated_at: job.now,
    };
  }

  /** A queued row as `claim` leaves it (the API answers it without a read; a test holds them equal). */
  static claimedRow(row: JobRow, claim: ClaimMade): JobRow {
    return {
      ...row,
      status: 'claimed',
      worker_id: claim.workerId,
      last_worker_id: claim.workerId,
      claimed_at: claim.now,
      lease_expires_at: claim.leaseExpiresAt,
      progress: null,
      updated_at: claim.now,
    };
  }

  /** Claim this queued job for a worker (queued → claimed). Answers the offer columns, or nothing if it was not queued. */
  claim(id: string, workerId: string, now: number, leaseExpiresAt: number): OfferRow | undefined {
    return this.sql.get<OfferRow>(
      `UPDATE jobs SET status = 'claimed', worker_id = ?, last_worker_id = ?, claimed_at = ?, lease_expires_at = ?,
         progress = NULL, updated_at = ?
       WHERE id = ? AND status = 'queued' AND not_before <= ?
       RETURNING ${OFFER_COLUMNS}`,
      workerId,
      workerId,
      now,
      leaseExpiresAt,
      now,
      id,
      now,
    );
  }

  /**
   * Claim the next queued job this worker can run: highest priority, then oldest; only (kind, engine)
   * pairs it serves, within its VRAM threshold, not in its skip list. Each pair's head comes from its
   * own stretch of the queue index, so a backlog for an engine this worker lacks costs it nothing.
   */
  claimNextFor(
    workerId: string,
    kindEngines: readonly string[],
    vramThresholdGb: number,
    skipJobIds: readonly string[],
    now: number,
    leaseExpiresAt: number,
    splitTextEncoders = true,
  ): OfferRow | undefined {
    if (kindEngines.length === 0) return undefined;
    // A worker without 'split-text-encoders' would refuse the file roles clip-l/clip-g/t5xxl as a
    // malformed offer (featuresNeededBy); the stored source is JSON.stringify output, so the match is exact.
    const roles = splitTextEncoders ? '' : `AND model_source NOT LIKE '%"role":"clip-%' AND model_source NOT LIKE '%"role":"t5xxl"%'`;
    // One prepared statement per shape (number of pairs, skips); the statement cache keeps them.
    const skip = skipJobIds.length > 0 ? `AND id NOT IN (${skipJobIds.map(() => '?').join(', ')})` : '';
    const head = `SELECT id, priority, seq FROM jobs INDEXED BY jobs_queue
         WHERE status = 'queued' AND kind = ? AND engine = ? AND not_before <= ? AND vram_gb_estimate <= ? ${skip} ${roles}
         ORDER BY priority DESC, seq LIMIT 1`;
    const params: SqlValue[] = [workerId, workerId, now, leaseExpiresAt, now];
    for (const pair of kindEngines) {
      const space = pair.indexOf(' ');
      params.push(pair.slice(0, space), pair.slice(space + 1), now, vramThresholdGb, ...skipJobIds);
    }
    // One pair (the usual worker): its head directly; several: the best of their heads.
    const pick =
      kindEngines.length === 1
        ? `SELECT id FROM (${head})`
        : `SELECT id FROM (${kindEngines.map(() => `SELECT * FROM (${head})`).join(' UNION ALL ')}) ORDER BY priority DESC, seq LIMIT 1`;
    return this.sql.get<OfferRow>(
      `UPDATE jobs SET status = 'claimed', worker_id = ?, last_worker_id = ?, claimed_at = ?, lease_expires_at = ?,
         progress = NULL, updated_at = ?
       WHERE id = (${pick}) AND status = 'queued'
       RETURNING ${OFFER_COLUMNS}`,
      ...params,
    );
  }

  /** claimed → running, for this worker's current attempt. */
  markRunning(id: string, workerId: string, attempt: number, now: number, leaseExpiresAt: number): boolean {
    return (
      this.sql.run(
        `UPDATE jobs SET status = 'running', started_at = ?, lease_expires_at = ?, updated_at = ?
         WHERE id = ? AND status = 'claimed' AND worker_id = ? AND attempt = ?`,
        now,
        leaseExpiresAt,
        now,
        id,
        workerId,
        attempt,
      ) === 1
    );
  }

  /** A transient refusal: back to the queue with the same attempt (it never started). */
  unclaim(id: string, workerId: string, attempt: number, now: number): boolean {
    return (
      this.sql.run(
        `UPDATE jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, claimed_at = NULL, updated_at = ?
         WHERE id = ? AND status = 'claimed' AND worker_id = ? AND attempt = ?`,
        now,
        id,
        workerId,
        attempt,
      ) === 1
    );
  }

  /**
   * Store the result of this worker's current attempt (claimed/running → done) and its attempt
   * record, in two statements under the same guard: the record is copied from the row before the
   * row changes, so no read of the row is needed.
   */
  complete(id: string, workerId: string, attempt: number, result: StoredResult, now: number): boolean {
    const recorded = this.sql.run(
      `INSERT OR REPLACE INTO job_attempts (job_id, attempt, worker_id, offered_at, accepted_at, ended_at, outcome, error)
       SELECT id, attempt, worker_id, COALESCE(claimed_at, ?), started_at, ?, 'done', NULL FROM jobs
       WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`,
      now,
      now,
      id,
      workerId,
      attempt,
    );
    if (recorded === 0) return false;
    const json = result.type === 'json' ? result.json : null;
    const file = result.type === 'file' ? result : { file: null, ext: null, bytes: null };
    const changed = this.sql.run(
      `UPDATE jobs SET status = 'done', result_type = ?, result_json = ?, result_file = ?, result_ext = ?, result_bytes = ?,
         worker_id = NULL, lease_expires_at = NULL, completed_at = ?, started_at = COALESCE(started_at, ?), updated_at = ?
       WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`,
      result.type,
      json,
      file.file,
      file.ext,
      file.bytes,
      now,
      now,
      now,
      id,
      workerId,
      attempt,
    );
    // Same guard, same turn: only a bug could part them, and the caller's unit then rolls back.
    if (changed !== 1) throw new Error(`job ${id}: the attempt was recorded but the result was not stored`);
    return true;
  }


  /** A held claim ends without a result: requeue with the next attempt, or fail for good. */
  endClaim(
    id: string,
    workerId: string,
    attempt: number,
    next:
      | { status: 'queued'; failures: number; losses: number; notBefore: number; lastError: string }
      | { status: 'failed'; failures: number; losses: number; lastError: string },
    now: number,
  ): boolean {
    if (next.status === 'queued') {
      return (
        this.sql.run(
          `UPDATE jobs SET status = 'queued', attempt = attempt + 1, failures = ?, losses = ?, not_before = ?, last_error = ?,
             worker_id = NULL, lease_expires_at = NULL, claimed_at = NULL, started_at = NULL, progress = NULL, updated_at = ?
           WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`,
          next.failures,
          next.losses,
          next.notBefore,
          next.lastError,
          now,
          id,
          workerId,
          attempt,
        ) === 1
      );
    }
    return (
      this.sql.run(
        `UPDATE jobs SET status = 'failed', failures = ?, losses = ?, last_error = ?, worker_id = NULL, lease_expires_at = NULL,
           completed_at = ?, updated_at = ?
         WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`,
        next.failures,
        next.losses,
        next.lastError,
        now,
        now,
        id,
        workerId,
        attempt,
      ) === 1
    );
  }

  /** Operator cancel: any non-terminal job ends `cancelled`. */
  cancel(id: string, now: number): boolean {
    return (
      this.sql.run(
        `UPDATE jobs SET status = 'cancelled', worker_id = NULL, lease_expires_at = NULL, completed_at = ?, updated_at = ?,
           last_error = COALESCE(last_error, 'cancelled by operator')
         WHERE id = ? AND status IN ('queued', 'claimed', 'running')`,
        now,
        now,
        id,
      ) === 1
    );
  }

  /** Operator retry of a failed or cancelled job: a fresh budget and the next attempt. */
  retry(id: string, modelSource: string, engine: string, vramGbEstimate: number, now: number): boolean {
    return (
      this.sql.run(
        `UPDATE jobs SET status = 'queued', attempt = attempt + 1, failures = 0, losses = 0, not_before = 0, last_error = NULL,
           model_source = ?, engine = ?, vram_gb_estimate = ?, worker_id = NULL, lease_expires_at = NULL,
           claimed_at = NULL, started_at = NULL, completed_at = NULL, progress = NULL,
           result_type = NULL, result_json = NULL, result_file = NULL, result_ext = NULL, result_bytes = NULL, updated_at = ?
         WHERE id = ? AND status IN ('failed', 'cancelled')`,
        modelSource,
        engine,
        vramGbEstimate,
        now,
        id,
      ) === 1
    );
  }

  renewLeases(workerId: string, leaseExpiresAt: number): number {
    return this.sql.run(`UPDATE jobs SET lease_expires_at = ? WHERE worker_id = ? AND ${HELD}`, leaseExpiresAt, workerId);
  }

  /** Renew one claim's lease, if this worker still holds that attempt. */
  renewLease(id: string, workerId: string, attempt: number, leaseExpiresAt: number): boolean {
    return this.sql.run(`UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND worker_id = ? AND attempt = ? AND ${HELD}`, leaseExpiresAt, id, workerId, attempt) === 1;
  }

  setProgress(id: string, workerId: string, attempt: number, progress: string, now: number): boolean {
    return (
      this.sql.run(
        `UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`,
        progress,
        now,
        id,
        workerId,
        attempt,
      ) === 1
    );
  }

  heldBy(workerId: string): Array<Pick<JobRow, 'id' | 'attempt' | 'status'>> {
    return this.sql.all(`SELECT id, attempt, status FROM jobs WHERE worker_id = ? AND ${HELD}`, workerId);
  }

  expiredLeases(now: number): Array<Pick<JobRow, 'id' | 'attempt' | 'worker_id'>> {
    return this.sql.all(
      `SELECT id, attempt, worker_id FROM jobs INDEXED BY jobs_lease WHERE ${HELD} AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT 500`,
      now,
    );
  }

  /** Offers made before `offeredBefore` that are still not accepted. */
  unansweredOffers(offeredBefore: number): Array<Pick<JobRow, 'id' | 'attempt' | 'worker_id'>> {
    return this.sql.all(
      `SELECT id, attempt, worker_id FROM jobs INDEXED BY jobs_offered WHERE status = 'claimed' AND claimed_at < ? ORDER BY claimed_at LIMIT 500`,
      offeredBefore,
    );
  }

  /** The soonest time after `after` at which a backed-off job becomes due, if any is waiting. */
  nextDueAfter(after: number): number | undefined {
    return this.sql.get<{ t: number | null }>(`SELECT MIN(not_before) AS t FROM jobs INDEXED BY jobs_due WHERE status = 'queued' AND not_before > 0 AND not_before > ?`, after)?.t ?? undefined;
  }

  /** The earliest lease of a held claim, and the earliest offer not yet accepted (for the wake-up time). */
  heldDeadlines(): { lease: number | undefined; offeredAt: number | undefined } {
    const lease = this.sql.get<{ t: number | null }>(`SELECT MIN(lease_expires_at) AS t FROM jobs INDEXED BY jobs_lease WHERE ${HELD}`)?.t;
    const offeredAt = this.sql.get<{ t: number | null }>(`SELECT MIN(claimed_at) AS t FROM jobs INDEXED BY jobs_offered WHERE status = 'claimed'`)?.t;
    return { lease: lease ?? undefined, offeredAt: offeredAt ?? undefined };
  }

  /** Whether a backed-off job became due in (after, now]: only backed-off jobs are looked at. */
  becameDue(after: number, now: number): boolean {
    return (
      this.sql.get(`SELECT 1 AS x FROM jobs INDEXED BY jobs_due WHERE status = 'queued' AND not_before > 0 AND not_before > ? AND not_before <= ? LIMIT 1`, after, now) !==
      undefined
    );
  }

  recordAttempt(
    id: string,
    attempt: number,
    workerId: string,
    offeredAt: number,
    acceptedAt: number | null,
    outcome: 'done' | 'failed' | 'lost' | 'handed_back' | 'cancelled',
    error: string | null,
    now: number,
  ): void {
    this.sql.run(
      `INSERT OR REPLACE INTO job_attempts (job_id, attempt, worker_id, offered_at, accepted_at, ended_at, outcome, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      attempt,
      workerId,
      offeredAt,
      acceptedAt,
      now,
      outcome,
      error,
    );
  }

  attempts(id: string): Array<{
    attempt: number;
    worker_id: string;
    offered_at: number;
    accepted_at: number | null;
    ended_at: number;
    outcome: string;
    error: string | null;
  }> {
    return this.sql.all('SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt', id);
  }

  /**
   * Newest first, optionally of one status, before a seq (paging). Each status reads from an index
   * that holds it (queued: jobs_queued; claimed/running: jobs_held, a few rows; finished:
   * jobs_ended), never the whole table.
   */
  list(filter: { status?: JobStatus; beforeSeq?: number; limit: number }): JobRow[] {
    const before = filter.beforeSeq ?? Number.MAX_SAFE_INTEGER;
    switch (filter.status) {
      case undefined:
        return this.sql.all<JobRow>('SELECT * FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?', before, filter.limit);
      case 'queued':
        return this.sql.all<JobRow>(`SELECT * FROM jobs INDEXED BY jobs_queued WHERE status = 'queued' AND seq < ? ORDER BY seq DESC LIMIT ?`, before, filter.limit);
      case 'claimed':
      case 'running':
        return this.sql.all<JobRow>(
          `SELECT * FROM jobs INDEXED BY jobs_held WHERE ${HELD} AND status = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
          filter.status,
          before,
          filter.limit,
        );
      default:
        return this.sql.all<JobRow>(
          `SELECT * FROM jobs INDEXED BY jobs_ended WHERE ${ENDED} AND status = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
          filter.status,
          before,
          filter.limit,
        );
    }
  }

  /** Jobs per status, each counted from the partial index that holds it (never the table). */
  countsByStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    const add = (rows: Array<{ status: string; n: number }>) => {
      for (const row of rows) if (row.n > 0) out[row.status] = row.n;
    };
    add(this.sql.all<{ status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM jobs INDEXED BY jobs_ended WHERE ${ENDED} GROUP BY status`));
    add(this.sql.all<{ status: string; n: number }>(`SELECT 'queued' AS status, COUNT(*) AS n FROM jobs INDEXED BY jobs_queued WHERE status = 'queued'`));
    add(this.sql.all<{ status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM jobs INDEXED BY jobs_held WHERE ${HELD} GROUP BY status`));
    return out;
  }
}
