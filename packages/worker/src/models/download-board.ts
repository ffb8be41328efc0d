import type { ModelFile } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { EngineProgress, ResolvedModelFile } from '../engines/engine.ts';
import type { EnsureContext } from './index.ts';

/** A model's download as `GET /models` shows it: while it runs, and after it failed. */
export interface DownloadState {
  state: 'downloading' | 'failed';
  bytesDone: number;
  /** Known once every file's size is known (from the registry or the server). */
  bytesTotal?: number;
  error?: string;
  since: string;
}

export interface ModelDownloadsOptions {
  /** The provisioner's `ensure`: makes a model's files present and verified. */
  ensure: (modelId: string, files: readonly ModelFile[], ctx: EnsureContext) => Promise<ResolvedModelFile[]>;
  /** Forget a cached failure of a source, so an explicit download tries it again. */
  forgetFailure?: (url: string) => void;
  log: Logger;
  /** A download ended (the ready set may have changed). */
  onSettled?: (modelId: string) => void;
}

interface Tracked {
  /** ensure() calls running for this model (a studio job and an explicit download may overlap). */
  active: number;
  files: readonly ModelFile[];
  /** Latest byte count and size per file name. */
  perFile: Map<string, { done: number; total?: number }>;
  state?: DownloadState;
}

/**
 * Every model file download goes through here (studio jobs, local jobs, `POST /models/:id/download`),
 * so the local API can show each model's progress and last failure. Successful downloads leave no
 * state behind: the model is then simply ready.
 */
export class ModelDownloads {
  readonly #options: ModelDownloadsOptions;
  readonly #tracked = new Map<string, Tracked>();
  /** Background downloads started through the API, by model id. */
  readonly #background = new Map<string, AbortController>();

  constructor(options: ModelDownloadsOptions) {
    this.#options = options;
  }

  state(modelId: string): DownloadState | undefined {
    const state = this.#tracked.get(modelId)?.state;
    return state ? { ...state } : undefined;
  }

  isDownloading(modelId: string): boolean {
    return (this.#tracked.get(modelId)?.active ?? 0) > 0;
  }

  /** Provision a model's files, keeping its download state up to date. Same contract as the provisioner's `ensure`. */
  async ensure(modelId: string, files: readonly ModelFile[], ctx: EnsureContext): Promise<ResolvedModelFile[]> {
    const tracked = this.#track(modelId, files);
    tracked.active++;
    const progress = (update: EngineProgress) => {
      this.#onProgress(tracked, update);
      ctx.progress(update);
    };
    try {
      const resolved = await this.#options.ensure(modelId, files, { signal: ctx.signal, progress });
      if (--tracked.active === 0) this.#tracked.delete(modelId);
      return resolved;
    } catch (error) {
      tracked.active--;
      if (ctx.signal.aborted) {
        // Stopped by its caller (a cancelled job, a deleted model): not a failure of the model.
        if (tracked.active === 0 && tracked.state?.state !== 'failed') this.#tracked.delete(modelId);
      } else {
        tracked.state = {
          state: 'failed',
          bytesDone: tracked.state?.bytesDone ?? 0,
          ...(tracked.state?.bytesTotal === undefined ? {} : { bytesTotal: tracked.state.bytesTotal }),
          error: error instanceof Error ? error.message : String(error),
          since: new Date().toISOString(),
        };
      }
      throw error;
    } finally {
      this.#options.onSettled?.(modelId);
    }
  }

  /**
   * `POST /models/:id/download`: provision in the background. A source that failed recently is tried
   * again (the operator asked explicitly).
   */
  start(modelId: string, files: readonly ModelFile[]): 'started' | 'already_downloading' {
    if (this.isDownloading(modelId) || this.#background.has(modelId)) return 'already_downloading';
    for (const file of files) this.#options.forgetFailure?.(file.url);
    const controller = new AbortController();
    this.#background.set(modelId, controller);
    this.#options.log.info({ op: 'model_download', modelId, files: files.length }, `download of model ${modelId} requested through the local API`);
    void this.ensure(modelId, files, { signal: controller.signal, progress: () => {} })
      .then(
        () => this.#options.log.info({ op: 'model_download', modelId }, `model ${modelId} is downloaded and verified`),
        (error: unknown) => {
          if (!controller.signal.aborted) this.#options.log.warn({ op: 'model_download', modelId }, `download of model ${modelId} failed: ${error instanceof Error ? error.message : String(error)}`);
        },
      )
      .finally(() => {
        if (this.#background.get(modelId) === controller) this.#background.delete(modelId);
      });
    return 'started';
  }

  /** Stop a background download and forget the model's state (the model is being deleted). */
  forget(modelId: string): void {
    this.#background.get(modelId)?.abort(new Error('model deleted'));
    this.#background.delete(modelId);
    this.#tracked.delete(modelId);
  }

  close(): void {
    for (const controller of this.#background.values()) controller.abort(new Error('daemon shutting down'));
    this.#background.clear();
  }

  #track(modelId: string, files: readonly ModelFile[]): Tracked {
    let tracked = this.#tracked.get(modelId);
    if (!tracked) this.#tracked.set(modelId, (tracked = { active: 0, files, perFile: new Map() }));
    return tracked;
  }

  #onProgress(tracked: Tracked, update: EngineProgress): void {
    if (update.phase !== 'downloading') return;
    // The provisioner's messages start with the file's name ("model.gguf 1.2/4.0 GB at 35 MB/s").
    const file = [...tracked.files].sort((a, b) => b.filename.length - a.filename.length).find((candidate) => update.message?.startsWith(`${candidate.filename} `));
    if (file && update.step !== undefined) tracked.perFile.set(file.filename, { done: update.step, total: update.total ?? file.approxBytes });
    let bytesDone = 0;
    let bytesTotal: number | undefined = 0;
    for (const candidate of tracked.files) {
      const seen = tracked.perFile.get(candidate.filename);
      bytesDone += seen?.done ?? 0;
      const total = seen?.total ?? candidate.approxBytes;
      bytesTotal = total === undefined || bytesTotal === undefined ? undefined : bytesTotal + total;
    }
    const since = tracked.state?.state === 'downloading' ? tracked.state.since : new Date().toISOString();
    tracked.state = { state: 'downloading', bytesDone, ...(bytesTotal === undefined ? {} : { bytesTotal }), since };
  }
}
