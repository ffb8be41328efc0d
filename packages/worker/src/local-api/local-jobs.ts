import { randomBytes } from 'node:crypto';
import { promptForTask, type ModelSource, type Task, type TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, type EngineProgress, type EngineResult } from '../engines/engine.ts';
import type { EngineStatus } from '../engines/router.ts';
import type { JobBoard } from '../observe/job-board.ts';
import { isThumbnailable } from '../observe/thumbnail.ts';
import type { CatalogModel } from '../models/index.ts';
import { settlesWithin } from '../platform/sleep.ts';
import type { LocalJob } from '../runner/index.ts';
import { ApiError } from './errors.ts';

/** A model a local job can run on: a catalogue entry or one of the synthetic engine's own ids. */
export interface LocalModel {
  id: string;
  kind: TaskKind;
  source: ModelSource;
}

export interface LocalJobsDeps {
  gate: { tryAcquire(): (() => void) | null };
  /** JobRunner.runLocal: the studio jobs' engine path, without the studio. */
  run: (job: LocalJob, ctx: { signal: AbortSignal; progress?: (update: EngineProgress) => void }) => Promise<EngineResult>;
  board: JobBoard;
  catalog: { get(id: string): CatalogModel | undefined; list(): CatalogModel[] };
  router: {
    resolve(engine: string, kind: TaskKind): { ok: true } | { ok: false; reason: string };
    status(): EngineStatus[];
    /** Settles once every engine has been probed (the local API is up before that). */
    probed(): Promise<void>;
  };
  /** The daemon is shutting down: no new local jobs. */
  stopping: () => boolean;
  log: Logger;
}

/** Seconds a client is told to wait when the engine is busy. */
export const BUSY_RETRY_AFTER_SECS = 2;
/** After an abort, how long shutdown waits for a local job's engine to stop. */
const ABORT_SETTLE_MS = 5_000;
const SYNTHETIC_SUFFIX: Record<TaskKind, string> = { image: 'image', llm: 'llm', audio_stt: 'stt', audio_tts: 'tts', video: 'video' };

/**
 * Local generation for the OpenAI-compatible routes: strict routing by the model's engine, the job
 * gate shared with studio jobs (taken → 503 busy with Retry-After), each run recorded in the jobs
 * list as `source: 'local'`, and aborted when the client goes away.
 */
export class LocalJobs {
  readonly #deps: LocalJobsDeps;
  /** Running local jobs: how to stop each, and when it has ended. */
  readonly #active = new Map<AbortController, Promise<void>>();

  constructor(deps: LocalJobsDeps) {
    this.#deps = deps;
  }

  /**
   * The model a request names (or the default for its kind: the first catalogue model of that kind
   * whose engine is available, else the synthetic one). 404 `model_not_found`; 400 `wrong_model_kind`.
   */
  resolveModel(requested: string | undefined, kind: TaskKind): LocalModel {
    if (requested === undefined || requested === '') return this.#defaultModel(kind);
    const entry = this.#deps.catalog.get(requested);
    if (entry) {
      if (entry.kind !== kind) throw new ApiError(400, 'wrong_model_kind', `model "${requested}" is a ${entry.kind} model; this route needs a ${kind} model`);
      return { id: entry.id, kind: entry.kind, source: entry.source };
    }
    const synthetic = this.#syntheticModel(requested, kind);
    if (synthetic) return synthetic;
    throw new ApiError(404, 'model_not_found', `no model "${requested}" on this worker; GET /v1/models lists them, POST /models adds one`);
  }

  /**
   * 503 `engine_unavailable` (with the router's reason) unless the model's engine can run it now.
   * During start-up it first waits for the engines' first probe.
   */
  async checkEngine(model: LocalModel): Promise<void> {
    await this.#deps.router.probed();
    const route = this.#deps.router.resolve(model.source.engine, model.kind);
    if (!route.ok) throw new ApiError(503, 'engine_unavailable', route.reason, { 'retry-after': '30' });
  }

  /** The job gate, or 503 `busy` / `shutting_down`. Release it when the request is done. */
  acquire(): () => void {
    if (this.#deps.stopping()) throw new ApiError(503, 'shutting_down', 'the worker is shutting down; try again once it is back');
    const release = this.#deps.gate.tryAcquire();
    if (!release) {
      throw new ApiError(503, 'busy', `the engine is busy with another job; retry in ${BUSY_RETRY_AFTER_SECS} s`, { 'retry-after': String(BUSY_RETRY_AFTER_SECS) });
    }
    return release;
  }

  /**
   * One job on the engine (the caller holds the gate). Recorded in the jobs list; an engine failure
   * becomes an ApiError (500 `engine_error`, 400 `bad_input`, 503, 504).
   */
  async run(model: LocalModel, task: Task, signal: AbortSignal): Promise<EngineResult> {
    const jobId = `local-${randomBytes(6).toString('hex')}`;
    const { board } = this.#deps;
    board.begin({ jobId, source: 'local', kind: task.kind, model: model.id, engine: model.source.engine, prompt: promptForTask(task) });
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason ?? new Error('the client went away'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    let ended!: () => void;
    this.#active.set(controller, new Promise<void>((resolve) => (ended = resolve)));
    try {
      const result = await this.#deps.run({ jobId, model: model.id, task, source: model.source }, { signal: controller.signal, progress: (update) => board.progress(jobId, update) });
      board.end(jobId, { status: 'done', ...(result.type === 'file' && task.kind === 'image' && isThumbnailable(result.ext) ? { image: { bytes: result.bytes, ext: result.ext } } : {}) });
      return result;
    } catch (error) {
      const failure = error instanceof EngineFailure ? error : new EngineFailure('engine_error', error instanceof Error ? error.message : String(error), { retryable: true });
      const cancelled = controller.signal.aborted || failure.code === 'cancelled';
      board.end(jobId, { status: cancelled ? 'cancelled' : 'failed', reason: cancelled ? `cancelled: ${reasonText(controller.signal.reason) ?? failure.message}` : `${failure.code}: ${failure.message}` });
      throw apiErrorFor(failure, cancelled, this.#deps.stopping());
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#active.delete(controller);
      ended();
    }
  }

  /** The models `GET /v1/models` lists: the catalogue, then the synthetic ids when that engine is here. */
  listModels(): Array<{ id: string; kind: TaskKind }> {
    const models = this.#deps.catalog.list().map((model) => ({ id: model.id, kind: model.kind }));
    if (this.#hasSynthetic()) {
      for (const kind of ['image', 'llm'] as const) models.push({ id: `synthetic-${SYNTHETIC_SUFFIX[kind]}`, kind });
    }
    return models;
  }

  /** Shutdown: running local jobs get `graceMs` to finish, then they are aborted. */
  async drain(graceMs: number): Promise<void> {
    if (this.#active.size === 0) return;
    const allEnded = Promise.all(this.#active.values());
    if (await settlesWithin(allEnded, graceMs)) return;
    for (const controller of this.#active.keys()) controller.abort(new Error('worker shutting down'));
    // An engine that ignores its abort must not hold the shutdown up for ever.
    await settlesWithin(allEnded, ABORT_SETTLE_MS);
  }

  #hasSynthetic(): boolean {
    return this.#deps.router.status().some((engine) => engine.engine === 'synthetic');
  }

  #syntheticModel(id: string, kind: TaskKind): LocalModel | undefined {
    if (!this.#hasSynthetic()) return undefined;
    const ownKind = (Object.keys(SYNTHETIC_SUFFIX) as TaskKind[]).find((candidate) => id === `synthetic-${SYNTHETIC_SUFFIX[candidate]}`);
    if (id !== 'synthetic' && ownKind === undefined) return undefined;
    if (ownKind !== undefined && ownKind !== kind) throw new ApiError(400, 'wrong_model_kind', `model "${id}" is a ${ownKind} model; this route needs a ${kind} model (try synthetic-${SYNTHETIC_SUFFIX[kind]})`);
    return { id, kind, source: { engine: 'synthetic', files: [], cliDefaults: {} } };
  }

  #defaultModel(kind: TaskKind): LocalModel {
    for (const entry of this.#deps.catalog.list()) {
      if (entry.kind !== kind) continue;
      if (this.#deps.router.resolve(entry.source.engine, kind).ok) return { id: entry.id, kind, source: entry.source };
    }
    const synthetic = this.#syntheticModel(`synthetic-${SYNTHETIC_SUFFIX[kind]}`, kind);
    if (synthetic) return synthetic;
    throw new ApiError(404, 'model_not_found', `no ${kind} model on this worker; name one ("model": …) or add one with POST /models`);
  }
}

function reasonText(reason: unknown): string | undefined {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : undefined;
}

function apiErrorFor(failure: EngineFailure, cancelled: boolean, stopping: boolean): ApiError {
  if (cancelled) {
    return stopping
      ? new ApiError(503, 'shutting_down', 'the worker shut down while the job ran; send it again once the worker is back')
      : new ApiError(499, 'cancelled', `the job was cancelled: ${failure.message}`);
  }
  switch (failure.code) {
    case 'engine_unavailable':
      return new ApiError(503, 'engine_unavailable', failure.message, { 'retry-after': '30' });
    case 'bad_input':
      return new ApiError(400, 'bad_input', failure.message);
    case 'timeout':
      return new ApiError(504, 'timeout', failure.message);
    default:
      return new ApiError(500, 'engine_error', failure.message);
  }
}
