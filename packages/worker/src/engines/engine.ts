import type { EngineName, FailCode, FileRole, ModelSource, ProgressPhase, Task, TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { InputUrlPolicy } from '../platform/url-policy.ts';

/**
 * The contract every engine implements (synthetic, sd-cpp, comfyui, a1111, openai, onnx, llama …).
 * The job runner owns everything around it: the job gate, progress throttling, the result outbox,
 * uploads. An engine only turns one task into one result, honours `ctx.signal`, and reports
 * progress. Engines never pick another engine: routing is strict on `ModelSource.engine`.
 */
export interface Engine {
  /** The `ModelSource.engine` value this engine serves, e.g. "synthetic" or "sd-cpp". */
  readonly name: EngineName;
  /** Task kinds this engine can run. */
  readonly kinds: readonly TaskKind[];
  /**
   * Whether the engine can run right now (binary found, server reachable, runtime loadable). An
   * unavailable engine is not advertised, and the reason is shown in `studio-worker status`.
   */
  probe(): Promise<EngineAvailability>;
  /**
   * Model ids to advertise per kind, besides the `<name>:*` wildcard the router adds for every
   * available engine. Synthetic advertises "synthetic" and "synthetic-<kind>" this way.
   */
  advertisedModels(): Partial<Record<TaskKind, readonly string[]>>;
  /** Run one job. Throw an EngineFailure (or any Error, read as a retryable engine_error). */
  run(job: EngineJob, ctx: EngineContext): Promise<EngineResult>;
  /** Stop resident processes and free resources (daemon shutdown). */
  close?(): Promise<void>;
}

export interface EngineJob {
  jobId: string;
  /**
   * The claim generation (engines that name runs per attempt use it): always a number, 1 where the
   * studio numbers no attempts and for local API jobs (runner/claim.ts).
   */
  attempt: number;
  /** The studio's model id (registry key), e.g. "synthetic-image" or "z-image-turbo-q4_k_m.gguf". */
  model: string;
  task: Task;
  source: ModelSource;
  /**
   * The ModelSource's files, downloaded and verified before the engine runs (the runner does this,
   * reporting `downloading` progress), in the order the source lists them. Empty when the source
   * lists no files (synthetic; engines whose server holds its own models).
   */
  files: readonly ResolvedModelFile[];
}

/** A model file on local disk, verified (length, and sha256 when the registry gives one). */
export interface ResolvedModelFile {
  role: FileRole;
  filename: string;
  /** Absolute path under `<models_root>/<sanitised model id>/`. */
  path: string;
  url: string;
}

/** Files of one role, in source order (e.g. every `lora`). */
export function filesOfRole(job: Pick<EngineJob, 'files'>, role: FileRole): ResolvedModelFile[] {
  return job.files.filter((file) => file.role === role);
}

export interface EngineProgress {
  phase: ProgressPhase;
  step?: number;
  total?: number;
  /** 0..1 when known. */
  fraction?: number;
  message?: string;
  /** A picture of the generation so far (ComfyUI's preview frames, A1111's current_image, sd.cpp's preview file). */
  preview?: EnginePreview;
}

/** A live preview image as the engine got it; the session shrinks and paces it for the wire. */
export interface EnginePreview {
  mime: 'image/jpeg' | 'image/png' | 'image/webp';
  bytes: Uint8Array;
}

export interface EngineContext {
  /** Aborted on cancel, shutdown or timeout. An engine stops within 1 s and throws. */
  signal: AbortSignal;
  /** Report progress as often as convenient; the caller throttles what goes on the wire. */
  progress(update: EngineProgress): void;
  log: Logger;
  /** A private scratch directory for this job, removed when the job ends. */
  workDir: string;
  /**
   * Origins this worker trusts for input images (../platform/url-policy.ts). Without it only public
   * https hosts are fetched.
   */
  inputUrls?: InputUrlPolicy;
}

export type EngineResult =
  | { type: 'json'; json: unknown }
  /** A binary result: image, audio or video bytes plus the extension they really are. */
  | { type: 'file'; bytes: Uint8Array; ext: string };

export type EngineAvailability = { available: true; detail?: string } | { available: false; reason: string };

/**
 * A failure an engine reports on purpose: a code the studio understands, whether another attempt
 * could succeed, and a message that says what went wrong (and, when the operator can fix it, how).
 */
export class EngineFailure extends Error {
  readonly code: FailCode;
  readonly retryable: boolean;
  constructor(code: FailCode, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EngineFailure';
    this.code = code;
    this.retryable = options.retryable;
  }
}

/** Convert anything an engine threw into a failure value. Aborts become `cancelled`. */
export function toEngineFailure(error: unknown, signal?: AbortSignal): EngineFailure {
  if (error instanceof EngineFailure) return error;
  if (signal?.aborted) {
    const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
    return new EngineFailure('cancelled', `job aborted: ${reason}`, { retryable: false, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new EngineFailure('engine_error', message || 'engine failed without a message', { retryable: true, cause: error });
}
