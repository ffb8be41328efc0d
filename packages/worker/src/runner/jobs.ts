import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_FRAME_BYTES, type ModelFile, type ModelSource, type InFlightJob, type JobOfferClaim, type RejectCode, type Task, type TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, toEngineFailure, type Engine, type EngineProgress, type EngineResult, type ResolvedModelFile } from '../engines/engine.ts';
import type { InputUrlPolicy } from '../platform/url-policy.ts';
import { claimFromOffer, FIRST_ATTEMPT, type Claim } from './claim.ts';
import { CANCELLED_BY_STUDIO, HANDED_BACK_ON_SHUTDOWN, JobAbort } from './job-abort.ts';
import type { ResultDelivery } from './delivery.ts';
import type { LinkHolder, StudioLink } from '../session/link.ts';
import type { Outbox, OutboxEntry, OutboxPayload } from './outbox.ts';
import { PreviewGate } from './preview-gate.ts';
import { PROGRESS_INTERVAL_MS, ProgressThrottle } from './progress-throttle.ts';
import { settlesWithin } from '../platform/sleep.ts';

/** The one-job gate (platform/job-gate.ts) as jobs see it: held while an engine runs. */
export interface JobGateLike {
  tryAcquire(): (() => void) | null;
  /** Waits for the gate (first come, first served); rejects with the signal's reason on abort. */
  acquire(signal?: AbortSignal): Promise<() => void>;
}

/** The engine router (engines/router.ts) as jobs see it: strict routing, no fallback. */
export interface EngineResolver {
  resolve(engineName: string, kind: TaskKind): { ok: true; engine: Engine } | { ok: false; code: 'unsupported'; reason: string };
}

/** Downloads and verifies a model's files (models/provisioner.ts). */
export type ModelFileProvider = (
  modelId: string,
  files: readonly ModelFile[],
  ctx: { signal: AbortSignal; progress: (update: EngineProgress) => void },
) => Promise<ResolvedModelFile[]>;

/**
 * What happens to an accepted studio job, for observers (the daemon's jobs list and metrics).
 * `progress` is the throttled stream the studio sees; `ended` carries the outcome as it goes into the
 * outbox (a file result with its bytes).
 */
export type JobEvent =
  | { type: 'accepted'; jobId: string; attempt: number; kind: TaskKind; model: string; engine: string; prompt: string; waiting: boolean }
  | { type: 'started'; jobId: string; attempt: number }
  | { type: 'progress'; jobId: string; attempt: number; update: EngineProgress }
  | { type: 'ended'; jobId: string; attempt: number; outcome: OutboxPayload };

/** A job from the local API: no claim, no studio; the model's source says which engine runs it. */
export interface LocalJob {
  jobId: string;
  model: string;
  task: Task;
  source: ModelSource;
}

export interface JobRunnerOptions {
  /** Observes accepted studio jobs; an observer that throws never affects the job. */
  onJobEvent?: (event: JobEvent) => void;
  /** Makes a claim's model files present before its engine runs; without it engines get none. */
  provision?: ModelFileProvider;
  gate: JobGateLike;
  router: EngineResolver;
  outbox: Outbox;
  delivery: ResultDelivery;
  links: LinkHolder;
  log: Logger;
  /** Why offers are held back right now (paused, shutting down, only-when-idle), or null to take them. */
  holdBack: () => string | null;
  /** The set of running jobs changed. */
  onChange?: () => void;
  /**
   * Whether to accept one more offer while a job runs (config `prefetch`); honoured only on a link
   * whose studio announced the `prefetch` feature. Default: never.
   */
  prefetch?: () => boolean;
  /**
   * A job's engine part ended with this outcome (success, engine failure, cancel, hand-back). Called
   * synchronously when the engine returns, before any later offer is looked at.
   */
  onEngineOutcome?: (job: { jobId: string; attempt: number }, outcome: OutboxPayload) => void;
  /** An offer was accepted (the daemon mirrors its model into the local catalogue). */
  onAccept?: (claim: JobOfferClaim) => void;
  progressIntervalMs?: number;
  /** After an abort, how long an engine gets to stop before its job is reported without it (5 s). */
  abortSettleMs?: number;
  /** Where per-job scratch dirs go (default: the OS temp dir). */
  scratchRoot?: string;
  /** Origins trusted for input images, read per job (default: none, only public https hosts). */
  inputUrls?: () => InputUrlPolicy;
}

/**
 * `waiting`: accepted while another job had the engine (prefetch); `running`: holds the job gate,
 * engine about to run or running; `finishing`: the engine returned and the gate is free again, the
 * outcome is on its way into the outbox.
 */
type JobPhase = 'waiting' | 'running' | 'finishing';

interface RunningJob {
  jobId: string;
  /** `claim.attemptOnWire`: what frames, uploads and the outbox carry (none for the original studio). */
  attemptOnWire: number | undefined;
  claim: Claim;
  startedAt: string;
  controller: AbortController;
  /** Resolves once the job's outcome is in the outbox (or could not be stored). */
  done: Promise<void>;
  /** Set when the outcome was recorded, so a late engine result cannot record a second one. */
  ended: boolean;
  phase: JobPhase;
  /** Gives the job gate back; null while the job does not hold it. */
  release: (() => void) | null;
  /** A prefetched job's place in the gate's queue, taken when it was accepted. */
  gateTurn: Promise<() => void> | null;
  /** Live previews waiting for the next progress frame (feature `preview`). */
  previews: PreviewGate;
  /** Marks `done`. */
  settle: () => void;
}

/** After an abort, how long an engine gets to stop before its job is reported without it. */
const ABORT_SETTLE_MS = 5_000;
/** JSON results bigger than a frame go over HTTP as a `.json` file. */
const MAX_JSON_FRAME_RESULT = MAX_FRAME_BYTES - 64 * 1024;

/**
 * Takes offers and runs them (original-spec §3.3): paused → `reject{paused}`, gate taken →
 * `reject{busy}`, no engine for `modelSource.engine` → `reject{unsupported}` (never another engine),
 * otherwise `accept` and run. Outcomes go to the outbox first, then to the studio. Jobs outlive
 * sessions: a job that finishes while disconnected is delivered by the next session.
 *
 * Prefetch (DESIGN.md worker rule 2): with it on, one more offer is accepted while a job runs. It
 * waits for the job gate and starts the moment the running job's engine returns — before that job's
 * result is stored or uploaded — so the engine never waits for an upload.
 */
export class JobRunner {
  readonly #options: JobRunnerOptions;
  readonly #running = new Map<string, RunningJob>();
  readonly #meter = new EngineBusyMeter();

  constructor(options: JobRunnerOptions) {
    this.#options = options;
  }

  /** Accepted jobs not finished yet (`state: 'running'` in hello and heartbeats, so their leases are renewed). */
  inFlight(): InFlightJob[] {
    return this.#ordered().map((job) => ({
      jobId: job.jobId,
      ...(job.attemptOnWire === undefined ? {} : { attempt: job.attemptOnWire }),
      state: 'running' as const,
    }));
  }

  /** Accepted jobs not finished yet: the one with the engine first, then a prefetched one waiting for it. */
  currentJobIds(): string[] {
    return this.#ordered().map((job) => job.jobId);
  }

  /** Prefetched jobs waiting for the engine. */
  waitingJobIds(): string[] {
    return this.#ordered()
      .filter((job) => job.phase === 'waiting')
      .map((job) => job.jobId);
  }

  /**
   * How busy the engines were: cumulative ms inside `engine.run` (`busyMs`) against the wall time
   * since the first engine started (`sinceMs`). Both 0 before the first job.
   */
  engineBusy(): { busyMs: number; sinceMs: number } {
    return this.#meter.read();
  }

  handleOffer(offer: JobOfferClaim, link: StudioLink): void {
    const { log } = this.#options;
    const claim = claimFromOffer(offer);
    const { jobId, attemptOnWire: attempt } = claim;
    const engineName = claim.source.engine;
    log.info(
      { op: 'offer', jobId, attempt, model: claim.model, engine: engineName, kind: claim.kind, gameId: offer.gameId, assetName: offer.assetName, vram: offer.vramGbEstimate },
      `offer received for ${claim.kind} job ${jobId} (model ${claim.model}, engine ${engineName})`,
    );
    const heldBack = this.#options.holdBack();
    if (heldBack !== null) return this.#reject(link, claim, 'paused', heldBack);
    const held = this.#running.get(jobId);
    if (held) return this.#reject(link, claim, 'busy', `this worker is still working on job ${jobId} (attempt ${held.claim.attempt})`);
    const release = this.#options.gate.tryAcquire();
    if (release === null && !this.#canPrefetch(link)) return this.#reject(link, claim, 'busy', this.#busyReason());
    const route = this.#options.router.resolve(engineName, claim.kind);
    if (!route.ok) {
      release?.();
      return this.#reject(link, claim, 'unsupported', route.reason);
    }
    if (!link.send({ type: 'accept', jobId, attempt })) {
      release?.();
      log.warn({ op: 'offer', jobId, attempt }, 'accept could not be sent (the session ended); the studio hands the job out again');
      return;
    }
    this.#options.onAccept?.(offer);
    this.#start(claim, route.engine, release);
  }

  /**
   * A local API job: the engine path of a studio job (strict routing, a scratch dir, the model's
   * files provisioned, the busy meter, log lines tagged with the job id) without the studio part (no
   * accept, no outbox, no upload). The caller holds the job gate for it. Throws an EngineFailure.
   */
  async runLocal(job: LocalJob, ctx: { signal: AbortSignal; progress?: (update: EngineProgress) => void }): Promise<EngineResult> {
    const { signal } = ctx;
    const progress = ctx.progress ?? (() => {});
    const log = this.#options.log.child({ jobId: job.jobId });
    const route = this.#options.router.resolve(job.source.engine, job.task.kind);
    if (!route.ok) throw new EngineFailure('engine_unavailable', route.reason, { retryable: true });
    let workDir: string | undefined;
    let engineMs: number | undefined;
    try {
      workDir = await mkdtemp(join(this.#options.scratchRoot ?? tmpdir(), 'studio-worker-local-'));
      const files = job.source.files.length > 0 && this.#options.provision ? await this.#options.provision(job.model, job.source.files, { signal, progress }) : [];
      if (signal.aborted) throw signal.reason;
      log.info({ op: 'job', source: 'local', engine: route.engine.name, kind: job.task.kind, model: job.model }, 'job started');
      const startedAt = this.#meter.start();
      let result: EngineResult;
      try {
        result = await route.engine.run({ jobId: job.jobId, attempt: FIRST_ATTEMPT, model: job.model, task: job.task, source: job.source, files }, { signal, progress, log, workDir, inputUrls: this.#options.inputUrls?.() });
      } finally {
        engineMs = this.#meter.stop(startedAt);
      }
      if (signal.aborted) throw signal.reason;
      log.info({ op: 'job', source: 'local', result: result.type, engineMs }, 'job finished');
      return result;
    } catch (error) {
      const failure = toEngineFailure(error, signal);
      log.warn({ op: 'job', source: 'local', code: failure.code, engineMs }, `job failed (${failure.code}): ${failure.message}`);
      throw failure;
    } finally {
      if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => {});
    }
  }

  #emit(event: JobEvent): void {
    try {
      this.#options.onJobEvent?.(event);
    } catch (error) {
      this.#options.log.debug({ op: 'job', err: error }, 'a job observer threw; ignored');
    }
  }

  /** `cancel` from the studio: abort the job (running or waiting), or turn a held result into `fail{cancelled}`. */
  async cancel(jobId: string, attempt: number | undefined, reason?: string): Promise<void> {
    const job = this.#running.get(jobId);
    const message = reason ? `${CANCELLED_BY_STUDIO}: ${reason}` : CANCELLED_BY_STUDIO;
    if (job && (attempt === undefined || job.attemptOnWire === undefined || job.attemptOnWire === attempt)) {
      if (!job.ended) {
        const what = job.phase === 'waiting' ? 'dropping it before it started' : 'stopping it';
        this.#options.log.info({ op: 'cancel', jobId, attempt }, `studio cancelled job ${jobId}; ${what}`);
        job.controller.abort(new JobAbort('cancelled', message));
        return;
      }
      // Finished a moment ago: its outcome is on its way into the outbox; cancel it there.
      await job.done;
    }
    if (await this.#options.delivery.cancelHeld(jobId, attempt, message)) {
      this.#options.log.info({ op: 'cancel', jobId, attempt }, `studio cancelled job ${jobId} after it finished; its result will not be sent`);
      return;
    }
    this.#options.log.debug({ op: 'cancel', jobId, attempt }, 'cancel for a job this worker does not hold; ignored');
  }

  /**
   * Shutdown: a prefetched job that never started goes back at once; running jobs get `graceMs` to
   * finish, then they are aborted and handed back (`fail{handed_back, retryable:true}`). Resolves
   * once every job's outcome is in the outbox.
   */
  async drain(graceMs: number): Promise<void> {
    const jobs = [...this.#running.values()];
    if (jobs.length === 0) return;
    for (const job of jobs.filter((candidate) => candidate.phase === 'waiting' && !candidate.ended)) {
      this.#options.log.info({ op: 'shutdown', jobId: job.jobId, attempt: job.claim.attempt }, `job ${job.jobId} never started; handing it back at once`);
      job.controller.abort(new JobAbort('handed_back', HANDED_BACK_ON_SHUTDOWN));
    }
    const started = jobs.filter((job) => job.phase !== 'waiting').length;
    if (started > 0) this.#options.log.info({ op: 'shutdown', jobs: started, graceMs }, `waiting up to ${graceMs} ms for the running job to finish`);
    const allDone = Promise.all(jobs.map((job) => job.done));
    if (await settlesWithin(allDone, graceMs)) return;
    const still = jobs.filter((job) => !job.ended);
    for (const job of still) {
      this.#options.log.warn({ op: 'shutdown', jobId: job.jobId, attempt: job.claim.attempt }, `job ${job.jobId} did not finish within the grace period; handing it back`);
      job.controller.abort(new JobAbort('handed_back', HANDED_BACK_ON_SHUTDOWN));
    }
    if (await settlesWithin(allDone, this.#options.abortSettleMs ?? ABORT_SETTLE_MS)) return;
    // An engine that ignores its abort signal must not keep the job from going back.
    await Promise.all(still.filter((job) => !job.ended).map((job) => this.#record(job, { kind: 'fail', code: 'handed_back', retryable: true, error: HANDED_BACK_ON_SHUTDOWN })));
  }

  /** One extra offer, only while one of our jobs has the engine and none waits yet. */
  #canPrefetch(link: StudioLink): boolean {
    if (!this.#options.prefetch?.() || !link.has('prefetch')) return false;
    const jobs = [...this.#running.values()];
    return jobs.some((job) => job.phase === 'running') && !jobs.some((job) => job.phase === 'waiting');
  }

  #busyReason(): string {
    const jobs = [...this.#running.values()];
    if (jobs.some((job) => job.phase === 'waiting')) return 'worker already has a job running and one waiting (prefetch)';
    if (jobs.some((job) => job.phase === 'running')) return 'worker already has an in-flight job';
    return 'the engine is busy with local work';
  }

  #ordered(): RunningJob[] {
    const jobs = [...this.#running.values()];
    return [...jobs.filter((job) => job.phase !== 'waiting'), ...jobs.filter((job) => job.phase === 'waiting')];
  }

  #reject(link: StudioLink, claim: Claim, code: RejectCode, reason: string): void {
    this.#options.log.info({ op: 'offer', jobId: claim.jobId, attempt: claim.attemptOnWire, code }, `offer rejected (${code}): ${reason}`);
    link.send({ type: 'reject', jobId: claim.jobId, reason, code, attempt: claim.attemptOnWire });
  }

  /** `release` is the job gate when the job got it at once; null for a prefetched job, which waits for it. */
  #start(claim: Claim, engine: Engine, release: (() => void) | null): void {
    let settle!: () => void;
    const job: RunningJob = {
      jobId: claim.jobId,
      attemptOnWire: claim.attemptOnWire,
      claim,
      startedAt: new Date().toISOString(),
      controller: new AbortController(),
      done: new Promise<void>((resolve) => (settle = resolve)),
      ended: false,
      phase: release ? 'running' : 'waiting',
      release,
      gateTurn: null,
      previews: new PreviewGate(),
      settle,
    };
    if (!release) {
      // Queue for the gate now, so nothing accepted later (or queued later) goes first.
      job.gateTurn = this.#options.gate.acquire(job.controller.signal);
      // An abort before #run awaits the turn must not surface as an unhandled rejection.
      job.gateTurn.catch(() => {});
      const ahead = this.currentJobIds().join(', ');
      this.#options.log.info(
        { op: 'prefetch', jobId: job.jobId, attempt: claim.attempt, behind: ahead },
        `job ${job.jobId} accepted while ${ahead} runs (prefetch); it starts as soon as the engine is free`,
      );
    }
    this.#running.set(job.jobId, job);
    this.#emit({
      type: 'accepted',
      jobId: job.jobId,
      attempt: claim.attempt,
      kind: claim.kind,
      model: claim.model,
      engine: engine.name,
      prompt: claim.prompt,
      waiting: job.phase === 'waiting',
    });
    this.#options.onChange?.();
    void this.#run(claim, engine, job).catch((error: unknown) => {
      this.#options.log.error({ op: 'job', jobId: job.jobId, err: error }, 'job runner crashed');
      return this.#record(job, { kind: 'fail', code: 'engine_error', retryable: true, error: `the worker failed running the job: ${error instanceof Error ? error.message : String(error)}` });
    });
  }

  async #run(claim: Claim, engine: Engine, job: RunningJob): Promise<void> {
    const log = this.#options.log.child({ jobId: job.jobId, attempt: claim.attempt });
    const throttle = new ProgressThrottle(this.#options.progressIntervalMs ?? PROGRESS_INTERVAL_MS, (update) => this.#sendProgress(job, update));
    // A preview is kept apart from the throttled update: a later step without one must not drop it.
    const progress = (update: EngineProgress) => {
      if (update.preview !== undefined && this.#options.links.current?.has('preview')) job.previews.offer(update.preview);
      throttle.push(update);
    };
    const signal = job.controller.signal;
    let workDir: string | undefined;
    let outcome: OutboxPayload;
    let engineMs: number | undefined;
    try {
      // A prefetched job gets its scratch dir and its model files while it waits, so the engine
      // starts without delay; downloads report `downloading` progress.
      workDir = await mkdtemp(join(this.#options.scratchRoot ?? tmpdir(), 'studio-worker-job-'));
      const sourceFiles = claim.source.files;
      const files = sourceFiles.length > 0 && this.#options.provision ? await this.#options.provision(claim.model, sourceFiles, { signal, progress: (update) => throttle.push(update) }) : [];
      const prefetched = job.gateTurn !== null;
      if (job.gateTurn) {
        throttle.push({ phase: 'queued', message: 'waiting for the engine (prefetched while another job runs)' });
        job.release = await job.gateTurn;
        job.phase = 'running';
      }
      // Cancelled (or handed back) before the engine even started: do not start it (the finally
      // below gives the gate back).
      if (signal.aborted) throw signal.reason;
      const startedAt = this.#meter.start();
      let result: EngineResult;
      try {
        // The engine first, the bookkeeping after: a prefetched job's engine takes over from the
        // last one's without waiting for a log line, the job board and state.json (~0.2 ms per job
        // on the development machine: bench/README.md, "bench:busy"). An engine that throws
        // instead of rejecting still gets its bookkeeping before its failure.
        let running: Promise<EngineResult>;
        try {
          running = engine.run(
            { jobId: claim.jobId, attempt: claim.attempt, model: claim.model, task: claim.task, source: claim.source, files },
            { signal, progress, log, workDir, inputUrls: this.#options.inputUrls?.() },
          );
        } catch (error) {
          running = Promise.reject(error);
        }
        if (prefetched) {
          this.#emit({ type: 'started', jobId: job.jobId, attempt: claim.attempt });
          this.#options.onChange?.();
        }
        log.info({ op: 'job', engine: engine.name, kind: claim.kind, model: claim.model }, 'job started');
        result = await running;
      } finally {
        engineMs = this.#meter.stop(startedAt);
        // The engine is free: a prefetched job starts now, while this one's result is put away.
        this.#freeEngine(job);
      }
      throttle.stop();
      // An engine that finished anyway after an abort: a cancelled job's result is never sent.
      outcome = signal.aborted ? failureFromAbort(signal) : resultPayload(claim, result);
    } catch (error) {
      throttle.stop();
      if (signal.aborted) {
        outcome = failureFromAbort(signal);
      } else {
        const failure = toEngineFailure(error, signal);
        outcome = { kind: 'fail', code: failure.code, retryable: failure.retryable, error: failure.message };
      }
    } finally {
      throttle.stop();
      this.#freeEngine(job);
    }
    this.#options.onEngineOutcome?.({ jobId: job.jobId, attempt: claim.attempt }, outcome);
    if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => {});
    // A cancel that arrived while the scratch dir was being removed still wins over the result.
    if (outcome.kind !== 'fail' && signal.aborted) outcome = failureFromAbort(signal);
    if (outcome.kind === 'fail') log.warn({ op: 'job', code: outcome.code, retryable: outcome.retryable, engineMs }, `job failed (${outcome.code}): ${outcome.error}`);
    else log.info({ op: 'job', result: outcome.kind, engineMs }, 'job finished');
    await this.#record(job, outcome);
  }

  /** Give the job gate back (once) and mark the job as past its engine part. */
  #freeEngine(job: RunningJob): void {
    job.phase = 'finishing';
    const turn = job.gateTurn;
    job.gateTurn = null;
    // Ended before taking its queued turn (say, its scratch dir could not be made): pass the turn on.
    if (turn && job.release === null) void turn.then((release) => release(), () => {});
    const release = job.release;
    job.release = null;
    release?.();
  }

  /**
   * Outcome → outbox → studio. The first outcome recorded for a job wins. The gate is already free
   * (the engine returned), so a prefetched job runs while this one's result is stored and uploaded.
   */
  async #record(job: RunningJob, outcome: OutboxPayload): Promise<void> {
    if (job.ended) return;
    job.ended = true;
    this.#emit({ type: 'ended', jobId: job.jobId, attempt: job.claim.attempt, outcome });
    // Normally already done when the engine returned; not so when the job never reached it.
    this.#freeEngine(job);
    let entry: OutboxEntry | undefined;
    try {
      entry = await this.#options.outbox.put(job.jobId, job.attemptOnWire, outcome);
    } catch (error) {
      this.#options.log.error({ op: 'outbox', jobId: job.jobId, err: error }, 'could not store the job outcome in the outbox');
    }
    if (this.#running.get(job.jobId) === job) this.#running.delete(job.jobId);
    job.settle();
    this.#options.onChange?.();
    if (entry) {
      // A file goes up in its own request, which can take a while: say the engine is done with
      // this job, so a studio that counts slots offers a prefetching worker its next job now.
      if (outcome.kind === 'file') this.#sendPhase(job, 'uploading');
      this.#options.delivery.deliver(entry);
      return;
    }
    // Disk full or gone: say so over the socket if we can, so the studio does not wait for a lease.
    this.#options.links.current?.send({
      type: 'fail',
      jobId: job.jobId,
      attempt: job.attemptOnWire,
      retryable: true,
      code: 'engine_error',
      error: 'the worker could not store the result (is its disk full?)',
    });
  }

  /** A phase change that bypasses the throttle (the job has ended for the engine and the board). */
  #sendPhase(job: RunningJob, phase: 'uploading'): void {
    const link = this.#options.links.current;
    if (link?.has('progress')) link.send({ type: 'progress', jobId: job.jobId, attempt: job.attemptOnWire, phase });
  }

  #sendProgress(job: RunningJob, update: EngineProgress): void {
    if (job.ended) return;
    this.#emit({ type: 'progress', jobId: job.jobId, attempt: job.claim.attempt, update });
    const link = this.#options.links.current;
    if (!link?.has('progress')) return;
    link.send({
      type: 'progress',
      jobId: job.jobId,
      attempt: job.attemptOnWire,
      phase: update.phase,
      step: wholeOrUndefined(update.step),
      total: wholeOrUndefined(update.total),
      fraction: update.fraction === undefined || !Number.isFinite(update.fraction) ? undefined : Math.min(1, Math.max(0, update.fraction)),
      message: update.message?.slice(0, 500),
      preview: link.has('preview') ? job.previews.take() : undefined,
    });
  }
}

/**
 * Engine time against wall time, for the "engine busy fraction on a backlog" figure. Overlapping
 * engine runs (only possible after a forced hand-back) count once.
 */
class EngineBusyMeter {
  #firstStart: number | undefined;
  #active = 0;
  #activeSince = 0;
  #busyMs = 0;

  /** An engine run begins; returns its start time. */
  start(): number {
    const now = performance.now();
    this.#firstStart ??= now;
    if (this.#active++ === 0) this.#activeSince = now;
    return now;
  }

  /** That engine run ended; returns how long it took. */
  stop(startedAt: number): number {
    const now = performance.now();
    if (--this.#active === 0) this.#busyMs += now - this.#activeSince;
    return Math.round(now - startedAt);
  }

  read(): { busyMs: number; sinceMs: number } {
    if (this.#firstStart === undefined) return { busyMs: 0, sinceMs: 0 };
    const now = performance.now();
    return { busyMs: this.#busyMs + (this.#active > 0 ? now - this.#activeSince : 0), sinceMs: now - this.#firstStart };
  }
}

function wholeOrUndefined(value: number | undefined): number | undefined {
  return value === undefined || !Number.isFinite(value) || value < 0 ? undefined : Math.floor(value);
}

function failureFromAbort(signal: AbortSignal): OutboxPayload {
  const reason: unknown = signal.reason;
  if (reason instanceof JobAbort) return { kind: 'fail', code: reason.code, retryable: reason.retryable, error: reason.message };
  const failure = toEngineFailure(reason, signal);
  return { kind: 'fail', code: failure.code, retryable: failure.retryable, error: failure.message };
}

/** JSON results ride on `completeJson`; file results (and JSON too big for a frame) are uploaded. */
function resultPayload(claim: Claim, result: EngineResult): OutboxPayload {
  const { prompt } = claim;
  if (result.type === 'file') return { kind: 'file', prompt, ext: result.ext, body: result.bytes };
  const text = JSON.stringify(result.json ?? null);
  if (Buffer.byteLength(text) > MAX_JSON_FRAME_RESULT) return { kind: 'file', prompt, ext: 'json', body: Buffer.from(text) };
  return { kind: 'json', prompt, result: result.json ?? null };
}
