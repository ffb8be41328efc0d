import type { JobStatus as StudioJobStatus, TaskKind } from '@studio-worker/protocol';
import type { EngineProgress } from '../engines/engine.ts';
import type { JobEvent, OutboxPayload } from '../runner/index.ts';
import type { LogRecord } from './log-tap.ts';
import { isThumbnailable, makeThumbnail } from './thumbnail.ts';

export type JobSource = 'studio' | 'local';
/**
 * A job's status in the worker, in the protocol's words (`done`, as the studio says, never
 * `completed`). `queued` and `claimed` are studio-only: a job reaches the worker as an offer, and
 * the worker shows it once accepted. `waiting` is the worker's own: accepted while another job has
 * the engine (prefetch) — the studio already calls it `running`, since the worker holds it.
 */
export type JobStatus = Exclude<StudioJobStatus, 'queued' | 'claimed'> | 'waiting';
export type JobEndStatus = Exclude<JobStatus, 'waiting' | 'running'>;

/** A job as the local API shows it (original-spec §7 `JobWire`, plus engine, progress and attempt). */
export interface JobWire {
  jobId: string;
  source: JobSource;
  kind: TaskKind;
  model: string;
  engine: string;
  /** The full prompt (the last message for chat). */
  prompt: string;
  status: JobStatus;
  progress?: EngineProgress;
  /** Why it failed or was cancelled. */
  reason?: string;
  attempt?: number;
  startedAt: string;
  finishedAt?: string;
  hasThumbnail: boolean;
}

export interface JobLogLine {
  ts: string;
  level: string;
  module: string;
  msg: string;
}

export interface JobLogWire {
  lines: JobLogLine[];
  /** Lines dropped from the front once the job had more than the per-job cap. */
  dropped: number;
}

export type JobBegin = Pick<JobWire, 'jobId' | 'source' | 'kind' | 'model' | 'engine' | 'prompt' | 'attempt'> & {
  /** Accepted while another job had the engine (prefetch). */
  waiting?: boolean;
};

export interface JobEnd {
  status: JobEndStatus;
  reason?: string;
  /** An image result, for the thumbnail. */
  image?: { bytes: Uint8Array; ext: string };
}

/** Told once per job when it ends (metrics, notifications). */
export interface JobEnded {
  /** The job as it ended (a copy). */
  job: JobWire;
  source: JobSource;
  kind: TaskKind;
  status: JobEndStatus;
  /** From the moment the job had the engine (or was accepted, if it never got it). */
  durationSeconds: number;
}

export interface JobBoardOptions {
  /** Finished jobs kept, studio and local together (default 100). */
  recentLimit?: number;
  /** Log lines kept per job (default 400). */
  logLinesPerJob?: number;
  thumbnail?: (bytes: Uint8Array) => Promise<Buffer | null>;
  onEnded?: (ended: JobEnded) => void;
}

const MAX_LINE_CHARS = 2000;

interface JobRecord {
  wire: JobWire;
  log: JobLogLine[];
  dropped: number;
  /** performance.now() when the job got the engine (or was accepted). */
  since: number;
  thumbnail?: Buffer;
}

/**
 * Running and recent jobs, studio and local, with each job's log lines and an image result's
 * thumbnail (original-spec §3.13 "Jobs in the daemon"). Finished jobs are kept in one ring; the
 * oldest goes (with its log and thumbnail) when the ring is full.
 */
export class JobBoard {
  readonly #recentLimit: number;
  readonly #logLinesPerJob: number;
  readonly #thumbnail: (bytes: Uint8Array) => Promise<Buffer | null>;
  readonly #onEnded: (ended: JobEnded) => void;
  readonly #running = new Map<string, JobRecord>();
  readonly #endListeners = new Set<(ended: JobEnded) => void>();
  /** Oldest first. */
  #recent: JobRecord[] = [];

  constructor(options: JobBoardOptions = {}) {
    this.#recentLimit = options.recentLimit ?? 100;
    this.#logLinesPerJob = options.logLinesPerJob ?? 400;
    this.#thumbnail = options.thumbnail ?? ((bytes) => makeThumbnail(bytes));
    this.#onEnded = options.onEnded ?? (() => {});
  }

  begin(job: JobBegin): void {
    const wire: JobWire = {
      jobId: job.jobId,
      source: job.source,
      kind: job.kind,
      model: job.model,
      engine: job.engine,
      prompt: job.prompt,
      status: job.waiting ? 'waiting' : 'running',
      startedAt: new Date().toISOString(),
      hasThumbnail: false,
    };
    if (job.attempt !== undefined) wire.attempt = job.attempt;
    this.#running.set(job.jobId, { wire, log: [], dropped: 0, since: performance.now() });
  }

  /** A waiting (prefetched) job got the engine. */
  markRunning(jobId: string): void {
    const record = this.#running.get(jobId);
    if (!record || record.wire.status !== 'waiting') return;
    record.wire.status = 'running';
    record.since = performance.now();
  }

  progress(jobId: string, update: EngineProgress): void {
    const record = this.#running.get(jobId);
    if (!record) return;
    const progress: EngineProgress = { phase: update.phase };
    if (update.step !== undefined) progress.step = update.step;
    if (update.total !== undefined) progress.total = update.total;
    if (update.fraction !== undefined && Number.isFinite(update.fraction)) progress.fraction = update.fraction;
    if (update.message !== undefined) progress.message = update.message.slice(0, 500);
    record.wire.progress = progress;
  }

  end(jobId: string, end: JobEnd): void {
    const record = this.#running.get(jobId);
    if (!record) return;
    this.#running.delete(jobId);
    const wire = record.wire;
    wire.status = end.status;
    wire.finishedAt = new Date().toISOString();
    if (end.reason !== undefined) wire.reason = end.reason;
    if (end.status === 'done') delete wire.progress;
    this.#recent.push(record);
    while (this.#recent.length > this.#recentLimit) this.#recent.shift();
    const ended: JobEnded = { job: { ...wire }, source: wire.source, kind: wire.kind, status: end.status, durationSeconds: (performance.now() - record.since) / 1000 };
    for (const listener of [this.#onEnded, ...this.#endListeners]) {
      try {
        listener(ended);
      } catch {
        // An observer must never break the jobs list.
      }
    }
    if (end.image && isThumbnailable(end.image.ext)) void this.#makeThumbnail(record, end.image.bytes);
  }

  /** Called once for every job that ends (say, for desktop notifications); returns the unsubscribe function. */
  onJobEnded(listener: (ended: JobEnded) => void): () => void {
    this.#endListeners.add(listener);
    return () => this.#endListeners.delete(listener);
  }

  /** Studio jobs, as the JobRunner reports them. */
  onStudioJobEvent(event: JobEvent): void {
    switch (event.type) {
      case 'accepted':
        return this.begin({ ...event, source: 'studio' });
      case 'started':
        return this.markRunning(event.jobId);
      case 'progress':
        return this.progress(event.jobId, event.update);
      case 'ended':
        return this.end(event.jobId, endFromOutcome(this.#running.get(event.jobId)?.wire.kind, event.outcome));
    }
  }

  /** A daemon log line: kept in the log of the job it names (the running one, else the newest). */
  onLogRecord(record: LogRecord): void {
    if (typeof record.jobId !== 'string') return;
    const job = this.#running.get(record.jobId) ?? this.#newestRecent(record.jobId);
    if (!job) return;
    const msg = typeof record.msg === 'string' ? record.msg : '';
    job.log.push({
      ts: typeof record.time === 'string' ? record.time : new Date().toISOString(),
      level: record.level,
      module: typeof record.module === 'string' ? record.module : 'worker',
      msg: msg.length > MAX_LINE_CHARS ? `${msg.slice(0, MAX_LINE_CHARS - 1)}…` : msg,
    });
    if (job.log.length > this.#logLinesPerJob) {
      job.log.shift();
      job.dropped++;
    }
  }

  /** Running jobs (oldest first) and finished ones (newest first). */
  list(): { running: JobWire[]; recent: JobWire[] } {
    return {
      running: [...this.#running.values()].map((record) => ({ ...record.wire })),
      recent: [...this.#recent].reverse().map((record) => ({ ...record.wire })),
    };
  }

  get(jobId: string): (JobWire & { log: JobLogWire }) | undefined {
    const record = this.#find(jobId);
    return record ? { ...record.wire, log: logOf(record) } : undefined;
  }

  log(jobId: string): JobLogWire | undefined {
    const record = this.#find(jobId);
    return record ? logOf(record) : undefined;
  }

  thumbnail(jobId: string): Buffer | undefined {
    return this.#find(jobId)?.thumbnail;
  }

  /** Whether a running job uses this model (its files must not be deleted under it). */
  usesModel(modelId: string): boolean {
    return [...this.#running.values()].some((record) => record.wire.model === modelId);
  }

  runningCount(): number {
    return this.#running.size;
  }

  #find(jobId: string): JobRecord | undefined {
    return this.#running.get(jobId) ?? this.#newestRecent(jobId);
  }

  #newestRecent(jobId: string): JobRecord | undefined {
    for (let index = this.#recent.length - 1; index >= 0; index--) {
      const record = this.#recent[index];
      if (record?.wire.jobId === jobId) return record;
    }
    return undefined;
  }

  async #makeThumbnail(record: JobRecord, bytes: Uint8Array): Promise<void> {
    const thumbnail = await this.#thumbnail(bytes).catch(() => null);
    // Dropped from the ring while the thumbnail was made: nothing to attach it to.
    if (!thumbnail || !this.#recent.includes(record)) return;
    record.thumbnail = thumbnail;
    record.wire.hasThumbnail = true;
  }
}

function logOf(record: JobRecord): JobLogWire {
  return { lines: [...record.log], dropped: record.dropped };
}

/** A studio job's outcome as the jobs list shows it; a hand-back counts as cancelled here. */
function endFromOutcome(kind: TaskKind | undefined, outcome: OutboxPayload): JobEnd {
  if (outcome.kind === 'fail') {
    const status: JobEndStatus = outcome.code === 'cancelled' || outcome.code === 'handed_back' ? 'cancelled' : 'failed';
    return { status, reason: outcome.code ? `${outcome.code}: ${outcome.error}` : outcome.error };
  }
  if (outcome.kind === 'file' && kind === 'image') return { status: 'done', image: { bytes: outcome.body, ext: outcome.ext } };
  return { status: 'done' };
}
