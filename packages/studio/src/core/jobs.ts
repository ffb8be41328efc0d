import { DEFAULT_POOL, featuresNeededBy, poolId, promptForTask, type CreateJobRequest, type JobStatus, type JobView, type ModelView } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { Dispatcher } from './dispatcher.ts';
import type { Caller } from './access.ts';
import { ADMIN_OWNER, type JobKeyStore } from './job-key-store.ts';
import { JobStore, type ClaimMade, type JobRow, type NewJob } from './job-store.ts';
import type { ModelRegistry } from './models.ts';
import type { Ports } from './ports.ts';
import { fail, ok, wrongPool, type Result } from './result.ts';
import type { Stores } from './stores.ts';
import { taskTextProblem } from './task-limits.ts';
import { jobView } from './views.ts';

/** The most jobs one list answer holds. */
export const MAX_LIST_LIMIT = 500;

/** Part of CoreOptions: the pool this core coordinates. */
export interface PoolOption {
  /**
   * The pool (packages/protocol pools.ts) this core runs: the ids it makes carry it, and a job that
   * belongs to another pool is refused with `wrong_pool` (its pool in the error) for the host to
   * forward. Undefined (the embedded host): one studio for everything, ids without a prefix.
   */
  pool?: string;
}

export interface JobsOptions extends PoolOption {
  /** Retryable failures a job may have before it fails for good. */
  defaultMaxAttempts: number;
}

export interface JobSubmission {
  request: CreateJobRequest;
  /** The client's idempotency key: the same key (and body) answers the same job. */
  key?: string;
}

export interface Submitted {
  /** One job per entry, in entry order (a replayed entry answers the job it made before). */
  jobs: JobView[];
  /** How many of them were made by this call. */
  created: number;
}

export type JobResult =
  | { type: 'json'; json: string }
  | { type: 'file'; fileName: string; ext: string; bytes: number };

/**
 * `job-` + 16 hex digits: the creation sequence (10 digits) then 6 random ones. Ids that grow with
 * `seq` land at the right edge of the primary-key index (and of job_attempts'), so an insert dirties
 * one page instead of a random one per job — the difference between a commit writing a few pages
 * and one writing a page per job, and between a hot index and one that must be read from disk once
 * the table outgrows the cache. Unique because `seq` is.
 */
export function jobId(seq: number, randomHex6: string): string {
  return `job-${seq.toString(16).padStart(10, '0')}${randomHex6}`;
}

/** The job API: create, list, read, cancel, retry. Offering and results live in the dispatcher. */
export class Jobs {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private readonly dispatcher: Dispatcher;
  private readonly models: ModelRegistry;
  private readonly opts: JobsOptions;
  private readonly log: Logger;
  private readonly keys: JobKeyStore;
  private seq: number;

  constructor(ports: Ports, stores: Stores, dispatcher: Dispatcher, models: ModelRegistry, opts: JobsOptions, log: Logger) {
    this.ports = ports;
    this.stores = stores;
    this.dispatcher = dispatcher;
    this.models = models;
    this.opts = opts;
    this.log = log;
    this.keys = stores.jobKeys;
    this.seq = stores.jobs.maxSeq();
  }

  create(request: CreateJobRequest): Result<JobView> {
    const created = this.createMany([request]);
    if (!created.ok) return created;
    return ok(created.value[0] as JobView);
  }

  /**
   * Create several jobs in one transaction: all of them, or (on any bad entry) none. `options.labels`
   * names the entries in error messages (default `jobs[i]: `); `options.inserted(ids)` runs inside
   * the transaction, so what a caller records about the new jobs (idempotency keys, owners) commits
   * with them or not at all.
   */
  createMany(requests: readonly CreateJobRequest[], options: { labels?: readonly string[]; inserted?: (ids: readonly string[]) => void } = {}): Result<JobView[]> {
    const now = this.ports.clock.now();
    // A batch names few models: resolve (and serialize, and read the features they need) each once,
    // not once per job.
    const resolved = new Map<string, Result<{ model: ModelView; source: string; needs: readonly string[] }>>();
    const prepared: Array<{ request: CreateJobRequest; model: ModelView; source: string; needs: readonly string[] }> = [];
    for (const [index, request] of requests.entries()) {
      let entry = resolved.get(request.model);
      if (!entry) {
        const model = this.models.resolve(request.model);
        entry = model.ok ? ok({ model: model.value, source: JSON.stringify(model.value.source), needs: featuresNeededBy(model.value.source) }) : model;
        resolved.set(request.model, entry);
      }
      const where = options.labels?.[index] ?? (requests.length > 1 ? `jobs[${index}]: ` : '');
      if (!entry.ok) return fail(entry.error.status, entry.error.code, where + entry.error.message);
      const { model, source, needs } = entry.value;
      const pool = this.poolOf(request, model);
      if (this.opts.pool !== undefined && pool !== this.opts.pool) {
        return wrongPool(pool, `${where}the job belongs to the pool "${pool}" (${request.pool ? 'its pool field' : `model "${model.id}"`}), not "${this.opts.pool}"; send it to that pool`);
      }
      if (model.kind !== request.task.kind) {
        return fail(400, 'kind_mismatch', `${where}model "${request.model}" makes ${model.kind} results but task.kind is "${request.task.kind}"`);
      }
      const tooLong = taskTextProblem(request.task);
      if (tooLong) return fail(400, 'task_too_long', where + tooLong);
      prepared.push({ request, model, source, needs });
    }
    const newJob = ({ request, model, source }: (typeof prepared)[number]): NewJob => {
      const seq = ++this.seq;
      return {
        id: poolId(this.opts.pool, jobId(seq, this.ports.crypto.randomHex(3))),
        seq,
        model: model.id,
        kind: model.kind,
        engine: model.source.engine,
        task: JSON.stringify(request.task),
        modelSource: source,
        vramGbEstimate: model.vramGbEstimate,
        gameId: request.gameId,
        assetName: request.assetName,
        prompt: promptForTask(request.task),
        priority: request.priority,
        maxAttempts: request.maxAttempts ?? this.opts.defaultMaxAttempts,
        now,
      };
    };
    let placed: Array<{ row: NewJob; claim: ClaimMade | undefined; task: CreateJobRequest['task'] }>;
    if (prepared.length === 1 && !options.inserted) {
      // One job with nothing recorded beside it: stored already claimed when an idle worker can take
      // it (one statement).
      const only = prepared[0] as (typeof prepared)[number];
      const row = newJob(only);
      placed = [{ row, claim: this.dispatcher.insertAndOffer(row, only.needs), task: only.request.task }];
    } else {
      // A batch (or a job with keys or an owner): all inserted with what the caller records about
      // them, or none (one transaction), then offered one by one.
      const rows = this.ports.sql.transaction(() => {
        const made = prepared.map((entry) => {
          const row = newJob(entry);
          this.stores.jobs.insert(row);
          return row;
        });
        options.inserted?.(made.map((row) => row.id));
        return made;
      });
      placed = rows.map((row, i) => ({
        row,
        task: (prepared[i] as (typeof prepared)[number]).request.task,
        claim: this.dispatcher.jobQueued({ id: row.id, kind: row.kind, engine: row.engine, vramGbEstimate: row.vramGbEstimate, needs: prepared[i]?.needs }),
      }));
    }
    this.log.debug({ op: 'job', count: placed.length }, 'jobs created');
    // The answer shows a job offered at once as claimed; built from what was written, not read back
    // (the task is the validated request's, not its stored text parsed again).
    return ok(
      placed.map(({ row, claim, task }) => {
        const inserted = JobStore.insertedRow(row);
        return jobView(claim ? JobStore.claimedRow(inserted, claim) : inserted, undefined, task);
      }),
    );
  }

  /** The next creation sequence number (a job carried in from another studio takes its place here). */
  nextSeq(): number {
    return ++this.seq;
  }

  /** The pool a submission belongs to: its own `pool`, else its model's, else the default pool. */
  poolOf(request: Pick<CreateJobRequest, 'pool'>, model: Pick<ModelView, 'pool'> | undefined): string {
    return request.pool ?? model?.pool ?? DEFAULT_POOL;
  }

  /**
   * Create jobs, each under an optional idempotency key: a key already used by this owner with the
   * same body answers the job it made then (also across restarts; keys live in SQL), with a
   * different body it is a 409. New jobs, their keys and their owner commit in one transaction
   * (createMany's), all or none.
   */
  submit(owner: string, entries: readonly JobSubmission[]): Result<Submitted> {
    const now = this.ports.clock.now();
    const where = (index: number) => (entries.length > 1 ? `jobs[${index}]: ` : '');
    // Each entry is a job made earlier (a replay) or a slot in the list of jobs to make now.
    const plan: Array<{ existing: string } | { fresh: number }> = [];
    const fresh: Array<{ request: CreateJobRequest; label: string; key?: { key: string; hash: string } }> = [];
    const inBatch = new Map<string, { hash: string; index: number; slot: { existing: string } | { fresh: number } }>();
    for (const [index, { request, key }] of entries.entries()) {
      let keyed: { key: string; hash: string } | undefined;
      if (key !== undefined) {
        const hash = this.ports.crypto.sha256Hex(JSON.stringify(request));
        const twin = inBatch.get(key);
        if (twin) {
          if (twin.hash !== hash) {
            return fail(409, 'idempotency_conflict', `${where(index)}idempotency key "${key}" is also used by jobs[${twin.index}] with a different body; give each job its own key`);
          }
          plan.push(twin.slot);
          continue;
        }
        const prior = this.keys.find(owner, key);
        if (prior) {
          if (prior.requestHash !== hash) {
            return fail(409, 'idempotency_conflict', `${where(index)}idempotency key "${key}" was already used for job ${prior.jobId} with a different body; resend the same body to get that job back, or use a new key for a new job`);
          }
          const slot = { existing: prior.jobId };
          plan.push(slot);
          inBatch.set(key, { hash, index, slot });
          continue;
        }
        keyed = { key, hash };
      }
      const slot = { fresh: fresh.length };
      plan.push(slot);
      if (keyed) inBatch.set(keyed.key, { hash: keyed.hash, index, slot });
      fresh.push({ request, label: where(index), key: keyed });
    }
    const made =
      fresh.length === 0
        ? ok<JobView[]>([])
        : this.createMany(
            fresh.map((f) => f.request),
            {
              labels: fresh.map((f) => f.label),
              // Only when there is something to record beside the jobs (keys, an owner), so a plain
              // single create keeps its one-statement path.
              inserted:
                owner !== ADMIN_OWNER || fresh.some((f) => f.key)
                  ? (ids) =>
                      ids.forEach((id, i) => {
                        const key = fresh[i]?.key;
                        if (key) this.keys.insert(owner, key.key, key.hash, id, now);
                        if (owner !== ADMIN_OWNER) this.keys.own(id, owner);
                      })
                  : undefined,
            },
          );
    if (!made.ok) return made;
    const jobs = plan.map((slot) => ('existing' in slot ? jobView(this.stores.jobs.get(slot.existing) as JobRow) : (made.value[slot.fresh] as JobView)));
    return ok({ jobs, created: made.value.length });
  }

  get(id: string): Result<JobView> {
    const row = this.stores.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    return ok(jobView(row, this.stores.jobs.attempts(id)));
  }

  /**
   * Several jobs by id (without their attempt history), for clients that follow a batch; unknown
   * ids are listed apart. A submit-scoped caller sees only its own jobs (the others are unknown).
   */
  lookup(ids: readonly string[], caller: Caller): { jobs: JobView[]; missing: string[] } {
    const jobs: JobView[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      const row = this.stores.jobs.get(id);
      if (row && (caller.scope !== 'submit' || this.keys.ownerOf(id) === caller.owner)) jobs.push(jobView(row));
      else missing.push(id);
    }
    return { jobs, missing };
  }

  list(filter: { status?: JobStatus; before?: number; limit?: number }): { jobs: JobView[]; nextBefore?: number } {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), MAX_LIST_LIMIT);
    const rows = this.stores.jobs.list({ status: filter.status, beforeSeq: filter.before, limit });
    const last = rows.at(-1);
    return { jobs: rows.map((r) => jobView(r)), nextBefore: rows.length === limit && last ? last.seq : undefined };
  }

  counts(): Record<string, number> {
    return this.stores.jobs.countsByStatus();
  }

  result(id: string): Result<JobResult> {
    const row = this.stores.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    if (row.status !== 'done') return fail(409, 'not_done', `job ${id} is ${row.status}; a result exists once it is done`);
    if (row.result_type === 'expired') return fail(410, 'result_expired', `the result of job ${id} was deleted by the studio's retention policy; submit the job again to make a new one`);
    if (row.result_type === 'file' && row.result_file) {
      return ok({ type: 'file', fileName: row.result_file, ext: row.result_ext ?? 'bin', bytes: row.result_bytes ?? 0 });
    }
    return ok({ type: 'json', json: row.result_json ?? 'null' });
  }

  cancel(id: string): Result<JobView> {
    const row = this.stores.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    if (row.status === 'done' || row.status === 'failed' || row.status === 'cancelled') {
      return fail(409, 'already_ended', `job ${id} is already ${row.status}`);
    }
    const now = this.ports.clock.now();
    const cancelled = this.ports.sql.transaction(() => {
      if (!this.stores.jobs.cancel(id, now)) return false;
      if (row.worker_id) this.stores.jobs.recordAttempt(id, row.attempt, row.worker_id, row.claimed_at ?? now, row.started_at, 'cancelled', 'cancelled by operator', now);
      return true;
    });
    if (!cancelled) return fail(409, 'already_ended', `job ${id} ended while it was being cancelled`);
    this.log.info({ op: 'job', jobId: id, workerId: row.worker_id }, 'job cancelled');
    this.dispatcher.jobCancelled(id, row.worker_id, row.attempt);
    return this.get(id);
  }

  retry(id: string): Result<JobView> {
    const row = this.stores.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    if (row.status !== 'failed' && row.status !== 'cancelled') {
      return fail(409, 'not_retryable', `job ${id} is ${row.status}; only failed or cancelled jobs can be retried`);
    }
    // The registry may have changed since: resolve the model again (original-spec §3.4).
    const model = this.models.resolve(row.model);
    if (!model.ok) return model;
    const now = this.ports.clock.now();
    if (!this.stores.jobs.retry(id, JSON.stringify(model.value.source), model.value.source.engine, model.value.vramGbEstimate, now)) {
      return fail(409, 'not_retryable', `job ${id} changed while it was being retried`);
    }
    this.log.info({ op: 'job', jobId: id }, 'job retried');
    this.dispatcher.jobQueued({ id, kind: row.kind, engine: model.value.source.engine, vramGbEstimate: model.value.vramGbEstimate });
    return this.get(id);
  }
}
