import { promptForTask, type CreateJobRequest, type JobStatus, type JobView, type ModelView } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { Dispatcher } from './dispatcher.ts';
import { JobStore, type ClaimMade, type NewJob } from './job-store.ts';
import type { ModelRegistry } from './models.ts';
import type { Ports } from './ports.ts';
import { fail, ok, type Result } from './result.ts';
import { jobView } from './views.ts';

export interface JobsOptions {
  /** Retryable failures a job may have before it fails for good. */
  defaultMaxAttempts: number;
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
  private readonly dispatcher: Dispatcher;
  private readonly models: ModelRegistry;
  private readonly opts: JobsOptions;
  private readonly log: Logger;
  private seq: number;

  constructor(ports: Ports, dispatcher: Dispatcher, models: ModelRegistry, opts: JobsOptions, log: Logger) {
    this.ports = ports;
    this.dispatcher = dispatcher;
    this.models = models;
    this.opts = opts;
    this.log = log;
    this.seq = dispatcher.jobs.maxSeq();
  }

  create(request: CreateJobRequest): Result<JobView> {
    const created = this.createMany([request]);
    if (!created.ok) return created;
    return ok(created.value[0] as JobView);
  }

  /** Create several jobs in one transaction: all of them, or (on any bad entry) none. */
  createMany(requests: readonly CreateJobRequest[]): Result<JobView[]> {
    const now = this.ports.clock.now();
    // A batch names few models: resolve (and serialize) each once, not once per job.
    const resolved = new Map<string, Result<{ model: ModelView; source: string }>>();
    const prepared: Array<{ request: CreateJobRequest; model: ModelView; source: string }> = [];
    for (const [index, request] of requests.entries()) {
      let entry = resolved.get(request.model);
      if (!entry) {
        const model = this.models.resolve(request.model);
        entry = model.ok ? ok({ model: model.value, source: JSON.stringify(model.value.source) }) : model;
        resolved.set(request.model, entry);
      }
      const where = requests.length > 1 ? `jobs[${index}]: ` : '';
      if (!entry.ok) return fail(entry.error.status, entry.error.code, where + entry.error.message);
      const { model, source } = entry.value;
      if (model.kind !== request.task.kind) {
        return fail(400, 'kind_mismatch', `${where}model "${request.model}" makes ${model.kind} results but task.kind is "${request.task.kind}"`);
      }
      prepared.push({ request, model, source });
    }
    const newJob = ({ request, model, source }: (typeof prepared)[number]): NewJob => {
      const seq = ++this.seq;
      return {
        id: jobId(seq, this.ports.crypto.randomHex(3)),
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
    let placed: Array<{ row: NewJob; claim: ClaimMade | undefined }>;
    if (prepared.length === 1) {
      // One job: stored already claimed when an idle worker can take it (one statement).
      const row = newJob(prepared[0] as (typeof prepared)[number]);
      placed = [{ row, claim: this.dispatcher.insertAndOffer(row) }];
    } else {
      // A batch: all inserted or none (one transaction), then offered one by one.
      const rows = this.ports.sql.transaction(() =>
        prepared.map((entry) => {
          const row = newJob(entry);
          this.dispatcher.jobs.insert(row);
          return row;
        }),
      );
      placed = rows.map((row) => ({ row, claim: this.dispatcher.jobQueued({ id: row.id, kind: row.kind, engine: row.engine, vramGbEstimate: row.vramGbEstimate }) }));
    }
    this.log.debug({ op: 'job', count: placed.length }, 'jobs created');
    // The answer shows a job offered at once as claimed; built from what was written, not read back.
    return ok(
      placed.map(({ row, claim }) => {
        const inserted = JobStore.insertedRow(row);
        return jobView(claim ? JobStore.claimedRow(inserted, claim) : inserted);
      }),
    );
  }

  get(id: string): Result<JobView> {
    const row = this.dispatcher.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    return ok(jobView(row, this.dispatcher.jobs.attempts(id)));
  }

  list(filter: { status?: JobStatus; before?: number; limit?: number }): { jobs: JobView[]; nextBefore?: number } {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 500);
    const rows = this.dispatcher.jobs.list({ status: filter.status, beforeSeq: filter.before, limit });
    const last = rows.at(-1);
    return { jobs: rows.map((r) => jobView(r)), nextBefore: rows.length === limit && last ? last.seq : undefined };
  }

  counts(): Record<string, number> {
    return this.dispatcher.jobs.countsByStatus();
  }

  result(id: string): Result<JobResult> {
    const row = this.dispatcher.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    if (row.status !== 'done') return fail(409, 'not_done', `job ${id} is ${row.status}; a result exists once it is done`);
    if (row.result_type === 'file' && row.result_file) {
      return ok({ type: 'file', fileName: row.result_file, ext: row.result_ext ?? 'bin', bytes: row.result_bytes ?? 0 });
    }
    return ok({ type: 'json', json: row.result_json ?? 'null' });
  }

  cancel(id: string): Result<JobView> {
    const row = this.dispatcher.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    if (row.status === 'done' || row.status === 'failed' || row.status === 'cancelled') {
      return fail(409, 'already_ended', `job ${id} is already ${row.status}`);
    }
    const now = this.ports.clock.now();
    const cancelled = this.ports.sql.transaction(() => {
      if (!this.dispatcher.jobs.cancel(id, now)) return false;
      if (row.worker_id) this.dispatcher.jobs.recordAttempt(id, row.attempt, row.worker_id, row.claimed_at ?? now, row.started_at, 'cancelled', 'cancelled by operator', now);
      return true;
    });
    if (!cancelled) return fail(409, 'already_ended', `job ${id} ended while it was being cancelled`);
    this.log.info({ op: 'job', jobId: id, workerId: row.worker_id }, 'job cancelled');
    this.dispatcher.jobCancelled(id, row.worker_id, row.attempt);
    return this.get(id);
  }

  retry(id: string): Result<JobView> {
    const row = this.dispatcher.jobs.get(id);
    if (!row) return fail(404, 'unknown_job', `job ${id} does not exist`);
    if (row.status !== 'failed' && row.status !== 'cancelled') {
      return fail(409, 'not_retryable', `job ${id} is ${row.status}; only failed or cancelled jobs can be retried`);
    }
    // The registry may have changed since: resolve the model again (original-spec §3.4).
    const model = this.models.resolve(row.model);
    if (!model.ok) return model;
    const now = this.ports.clock.now();
    if (!this.dispatcher.jobs.retry(id, JSON.stringify(model.value.source), model.value.source.engine, model.value.vramGbEstimate, now)) {
      return fail(409, 'not_retryable', `job ${id} changed while it was being retried`);
    }
    this.log.info({ op: 'job', jobId: id }, 'job retried');
    this.dispatcher.jobQueued({ id, kind: row.kind, engine: model.value.source.engine, vramGbEstimate: model.value.vramGbEstimate });
    return this.get(id);
  }
}
