import type { JobStatus, TaskKind } from '@studio-worker/protocol';
import type { SqlPort, SqlValue } from './ports.ts';
import { ENDED_CONDITION } from './schema.ts';

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

type TalliedStatus = 'queued' | 'done' | 'failed' | 'cancelled';
type Tally = Record<TalliedStatus, number>;

const OFFER_COLUMNS = 'id, attempt, model, game_id, asset_name, vram_gb_estimate, task, model_source';
const HELD = `status IN ('claimed', 'running')`;
/** Spelled as jobs_ended's condition, so SQLite may use that partial index. */
const ENDED = ENDED_CONDITION;

/**
 * The text of claimNextFor's statement for one shape (pairs, skips, roles), built once: the SQL
 * port finds its prepared statement by text, and the same string each time is hashed once, where a
 * string built per call is hashed (and compared) on every use.
 */
const claimNextTexts = new Map<string, string>();
function claimNextSql(pairs: number, skips: boolean, splitTextEncoders: boolean): string {
  const shape = `${pairs}/${skips ? 1 : 0}/${splitTextEncoders ? 1 : 0}`;
  let text = claimNextTexts.get(shape);
  if (text !== undefined) return text;
  // A worker without 'split-text-encoders' would refuse the file roles clip-l/clip-g/t5xxl as a
  // malformed offer (featuresNeededBy); the stored source is JSON.stringify output, so the match is exact.
  const roles = splitTextEncoders ? '' : `AND model_source NOT LIKE '%"role":"clip-%' AND model_source NOT LIKE '%"role":"t5xxl"%'`;
  // Numbered parameters: ?1 now, ?2 VRAM threshold, ?3 the skip list as one JSON array, then kind
  // and engine per pair — 3 + 2 per pair whatever the skips, since a Durable Object's SQL takes at
  // most 100 bound parameters.
  const skip = skips ? 'AND id NOT IN (SELECT value FROM json_each(?3))' : '';
  const head = (arm: number) => `SELECT priority, seq FROM jobs INDEXED BY jobs_queue
         WHERE status = 'queued' AND kind = ?${4 + 2 * arm} AND engine = ?${5 + 2 * arm} AND not_before <= ?1 AND vram_gb_estimate <= ?2 ${skip} ${roles}
         ORDER BY priority DESC, seq LIMIT 1`;
  // One pair (the usual worker): its head directly; several: the best of their heads.
  const pick =
    pairs === 1
      ? `SELECT seq FROM (${head(0)})`
      : `SELECT seq FROM (${Array.from({ length: pairs }, (_, arm) => `SELECT * FROM (${head(arm)})`).join(' UNION ALL ')}) ORDER BY priority DESC, seq LIMIT 1`;
  text = `SELECT seq, ${OFFER_COLUMNS} FROM jobs WHERE seq = (${pick})`;
  claimNextTexts.set(shape, text); // at most pairs × 4 shapes
  return text;
}

/** Hot statements with substitutions, built once (see claimNextSql for why). */

/**
 * The claim of a queued job that claimNextSql or CLAIMABLE_SQL read (queued → claimed), guarded like
 * every state change. A read and then this, not one `UPDATE … RETURNING`: SQLite runs RETURNING as
 * a trigger, so inside a transaction that statement keeps a statement journal (a copy of every page
 * it changes, so that it alone can be undone) and gathers its row in a temporary table built and
 * dropped each time (bench/README.md, "The claim in two statements").
 */
const CLAIM_HEAD_SQL = `UPDATE jobs SET status = 'claimed', worker_id = ?1, last_worker_id = ?1, claimed_at = ?2, lease_expires_at = ?3,
         progress = NULL, updated_at = ?2
       WHERE seq = ?4 AND status = 'queued'`;

/** A queued job that may be claimed now, with its offer columns (`claim`). */
const CLAIMABLE_SQL = `SELECT seq, ${OFFER_COLUMNS} FROM jobs WHERE id = ? AND status = 'queued' AND not_before <= ?`;
const COMPLETE_SQL = `UPDATE jobs SET status = 'done', result_type = ?, result_json = ?, result_file = ?, result_ext = ?, result_bytes = ?,
         worker_id = NULL, lease_expires_at = NULL, completed_at = ?, started_at = COALESCE(started_at, ?), updated_at = ?
       WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`;
const HELD_DEADLINES_SQL = `SELECT MIN(lease_expires_at) AS lease, MIN(CASE WHEN status = 'claimed' THEN claimed_at END) AS offered
       FROM jobs INDEXED BY jobs_held WHERE ${HELD}`;
const RENEW_LEASE_SQL = `UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND worker_id = ? AND attempt = ? AND ${HELD}`;
const SET_PROGRESS_SQL = `UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND ${HELD} AND worker_id = ? AND attempt = ?`;

/**
 * Every statement about a job's life in the `jobs` table (done jobs read or expired as a whole are
 * FinishedJobStore's, scrape reads MetricsStore's). Each state change is one guarded UPDATE (a
 * compare-and-set on status, worker and attempt), so a stale or duplicate message changes nothing.
 */
export class JobStore {
  private readonly sql: SqlPort;
  /**
   * Jobs per status for the statuses that grow with the table (queued and the three endings), kept
   * here because every statement that moves a job between statuses is in this class: each one
   * adjusts the tally right after its guarded statement changed a row, so no path can forget it.
   * Counted from SQL when unknown: at start, and after a rollback undid changes the tally had seen
   * (`countsUnknown`). The held statuses (claimed, running) are few and counted from jobs_held.
   */
  private tally: Tally | undefined;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  /** A transaction rolled back: what it told the tally may be gone; count again on the next read. */
  countsUnknown(): void {
    this.tally = undefined;
  }

  /** A job moved `from` → `to` (undefined: did not exist; 'held': claimed or running, not told which). */
  private moved(from: JobStatus | 'held' | undefined, to: JobStatus): void {
    const tally = this.tally;
    if (!tally) return;
    if (from !== undefined && from in tally) tally[from as TalliedStatus]--;
    if (to in tally) tally[to as TalliedStatus]++;
  }

  /** Count the tallied statuses from their indexes (the start, or after a rollback). */
  recount(): void {
    const tally: Tally = { queued: 0, done: 0, failed: 0, cancelled: 0 };
    for (const row of this.sql.all<{ status: TalliedStatus; n: number }>(`SELECT status, COUNT(*) AS n FROM jobs INDEXED BY jobs_ended WHERE ${ENDED} GROUP BY status`)) {
      tally[row.status] = row.n;
    }
    tally.queued = this.sql.get<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs INDEXED BY jobs_queued WHERE status = 'queued'`)?.n ?? 0;
    this.tally = tally;
  }

  /** The status of one job, for a rare change whose guard admits several (cancel, retry): the tally needs the one it left. */
  private statusOf(id: string): JobStatus | undefined {
    return this.sql.get<{ status: JobStatus }>('SELECT status FROM jobs WHERE id = ?', id)?.status;
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
    this.moved(undefined, claim ? 'claimed' : 'queued');
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
    return this.claimHead(this.sql.get<OfferRow & { seq: number }>(CLAIMABLE_SQL, id, now), workerId, now, leaseExpiresAt);
  }

  /**
   * Claim the queued job just read (CLAIM_HEAD_SQL says why a read and an UPDATE). They run back to
   * back on the one connection inside one transaction, so it is still queued; the UPDATE is guarded
   * all the same, as every state change is.
   */
  private claimHead(head: (OfferRow & { seq: number }) | undefined, workerId: string, now: number, leaseExpiresAt: number): OfferRow | undefined {
    if (!head || this.sql.run(CLAIM_HEAD_SQL, workerId, now, leaseExpiresAt, head.seq) !== 1) return undefined;
    this.moved('queued', 'claimed');
    // Answered as read: the offer reads its columns by name, so `seq` beside them costs nothing,
    // where a copy without it would cost an object per claim.
    return head;
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
    // In the order claimNextSql numbers them.
    const params: SqlValue[] = [now, vramThresholdGb, skipJobIds.length > 0 ? JSON.stringify(skipJobIds) : null];
    for (const pair of kindEngines) {
      const space = pair.indexOf(' ');
      params.push(pair.slice(0, space), pair.slice(space + 1));
    }
    return this.claimHead(this.sql.get<OfferRow & { seq: number }>(claimNextSql(kindEngines.length, skipJobIds.length > 0, splitTextEncoders), ...params), workerId, now, leaseExpiresAt);
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
    const changed =
      this.sql.run(
        `UPDATE jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, claimed_at = NULL, updated_at = ?
         WHERE id = ? AND status = 'claimed' AND worker_id = ? AND attempt = ?`,
        now,
        id,
        workerId,
        attempt,
      ) === 1;
    if (changed) this.moved('claimed', 'queued');
    return changed;
  }

  /**
   * Store the result of this worker's current attempt (claimed/running → done): one guarded
   * statement. Its attempt record is written by the job-event trigger from the row as it was
   * (migration 10), so no read of the row is needed. `acceptedAt`: the worker's accept of this
   * attempt was not stored on its own (it came in the same read as the result,
   * Dispatcher.handleTexts); it becomes the start time.
   */
  complete(id: string, workerId: string, attempt: number, result: StoredResult, now: number, acceptedAt = now): boolean {
    const json = result.type === 'json' ? result.json : null;
    const file = result.type === 'file' ? result : { file: null, ext: null, bytes: null };
    const changed = this.sql.run(
      COMPLETE_SQL,
      result.type,
      json,
      file.file,
      file.ext,
      file.bytes,
      now,
      acceptedAt,
      now,
      id,
      workerId,
      attempt,
    );
    if (changed !== 1) return false;
    this.moved('held', 'done');
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
      const requeued =
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
        ) === 1;
      if (requeued) this.moved('held', 'queued');
      return requeued;
    }
    const failed =
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
      ) === 1;
    if (failed) this.moved('held', 'failed');
    return failed;
  }

  /** Operator cancel: any non-terminal job ends `cancelled`. */
  cancel(id: string, now: number): boolean {
    // Rare: read which status it leaves (the tally needs it); the guard below is still the whole rule.
    const from = this.statusOf(id);
    const changed =
      this.sql.run(
        `UPDATE jobs SET status = 'cancelled', worker_id = NULL, lease_expires_at = NULL, completed_at = ?, updated_at = ?,
           last_error = COALESCE(last_error, 'cancelled by operator')
         WHERE id = ? AND status IN ('queued', 'claimed', 'running')`,
        now,
        now,
        id,
      ) === 1;
    if (changed && from) this.moved(from, 'cancelled');
    return changed;
  }

  /** Operator retry of a failed or cancelled job: a fresh budget and the next attempt. */
  retry(id: string, modelSource: string, engine: string, vramGbEstimate: number, now: number): boolean {
    const from = this.statusOf(id);
    const changed =
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
      ) === 1;
    if (changed && from) this.moved(from, 'queued');
    return changed;
  }

  renewLeases(workerId: string, leaseExpiresAt: number): number {
    return this.sql.run(`UPDATE jobs SET lease_expires_at = ? WHERE worker_id = ? AND ${HELD}`, leaseExpiresAt, workerId);
  }

  /** Renew one claim's lease, if this worker still holds that attempt. */
  renewLease(id: string, workerId: string, attempt: number, leaseExpiresAt: number): boolean {
    return this.sql.run(RENEW_LEASE_SQL, leaseExpiresAt, id, workerId, attempt) === 1;
  }

  setProgress(id: string, workerId: string, attempt: number, progress: string, now: number): boolean {
    return (
      this.sql.run(
        SET_PROGRESS_SQL,
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
      `SELECT id, attempt, worker_id FROM jobs INDEXED BY jobs_held WHERE ${HELD} AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT 500`,
      now,
    );
  }

  /** Offers made before `offeredBefore` that are still not accepted. */
  unansweredOffers(offeredBefore: number): Array<Pick<JobRow, 'id' | 'attempt' | 'worker_id'>> {
    return this.sql.all(
      `SELECT id, attempt, worker_id FROM jobs INDEXED BY jobs_held WHERE ${HELD} AND status = 'claimed' AND claimed_at < ? ORDER BY claimed_at LIMIT 500`,
      offeredBefore,
    );
  }

  /** The soonest time after `after` at which a backed-off job becomes due, if any is waiting. */
  nextDueAfter(after: number): number | undefined {
    return this.sql.get<{ t: number | null }>(`SELECT MIN(not_before) AS t FROM jobs INDEXED BY jobs_due WHERE status = 'queued' AND not_before > 0 AND not_before > ?`, after)?.t ?? undefined;
  }

  /**
   * The earliest lease of a held claim, and the earliest offer not yet accepted (for the wake-up
   * time): one pass over jobs_held, which covers both columns (as many entries as claims held).
   */
  heldDeadlines(): { lease: number | undefined; offeredAt: number | undefined } {
    const row = this.sql.get<{ lease: number | null; offered: number | null }>(HELD_DEADLINES_SQL);
    return { lease: row?.lease ?? undefined, offeredAt: row?.offered ?? undefined };
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

  /**
   * Jobs per status (statuses with none left out): queued and the endings from the tally (O(1) at a
   * million rows), the held claims counted from jobs_held (as many as the workers' slots).
   */
  countsByStatus(): Record<string, number> {
    if (!this.tally) this.recount();
    const out: Record<string, number> = {};
    for (const [status, n] of Object.entries(this.tally as Tally)) if (n > 0) out[status] = n;
    for (const row of this.sql.all<{ status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM jobs INDEXED BY jobs_held WHERE ${HELD} GROUP BY status`)) {
      if (row.n > 0) out[row.status] = row.n;
    }
    return out;
  }
}
