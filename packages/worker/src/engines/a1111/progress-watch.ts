import type { EngineProgress } from '../engine.ts';
import type { A1111Progress } from './client.ts';

export interface ProgressWatchOptions {
  /** One GET /sdapi/v1/progress; undefined when it failed or made no sense. */
  poll(signal: AbortSignal): Promise<A1111Progress | undefined>;
  intervalMs: number;
  /** No change in this long → `onStall` (once), and the watch stops. */
  stallMs: number;
  onProgress(update: EngineProgress): void;
  /** A new `current_image` (base64) came with a poll; the last update it belongs to. */
  onPreview?(base64: string, last: EngineProgress | undefined): void;
  onStall(): void;
}

/**
 * Polls A1111's progress while a generation request runs: reports what changed, and calls the
 * watchdog when nothing has changed for `stallMs`. A failed poll counts as "no change", so a server
 * that hangs completely trips the watchdog too.
 */
export class ProgressWatch {
  readonly #options: ProgressWatchOptions;
  readonly #stop = new AbortController();
  #lastSignature: string | undefined;
  #lastUpdate: EngineProgress | undefined;
  #lastImage: string | undefined;
  #lastChange = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ProgressWatchOptions) {
    this.#options = options;
  }

  start(): void {
    this.#lastChange = Date.now();
    this.#schedule();
  }

  stop(): void {
    this.#stop.abort();
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stop.signal.aborted) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#options.intervalMs);
  }

  async #tick(): Promise<void> {
    // A poll may take a while on a busy machine; its answer is still worth having, and a poll
    // that times out only counts as "no change".
    const timeout = AbortSignal.timeout(Math.min(5_000, Math.max(1_000, this.#options.intervalMs * 4)));
    const state = await this.#options.poll(AbortSignal.any([this.#stop.signal, timeout])).catch(() => undefined);
    if (this.#stop.signal.aborted) return;
    if (state !== undefined) {
      const signature = progressSignature(state);
      if (signature !== this.#lastSignature) {
        this.#lastSignature = signature;
        this.#lastChange = Date.now();
        const update = progressUpdate(state);
        if (update !== undefined) {
          this.#lastUpdate = update;
          this.#options.onProgress(update);
        }
      }
      if (state.currentImage !== undefined && state.currentImage !== this.#lastImage) {
        this.#lastImage = state.currentImage;
        this.#options.onPreview?.(state.currentImage, this.#lastUpdate);
      }
    }
    if (Date.now() - this.#lastChange >= this.#options.stallMs) {
      this.stop();
      this.#options.onStall();
      return;
    }
    this.#schedule();
  }
}

/** What counts as "progress changed": anything but the ETA, which moves with the clock alone. */
export function progressSignature(state: A1111Progress): string {
  return [state.job, state.jobTimestamp, state.jobCount, state.jobNo, state.samplingStep, state.samplingSteps, state.progress].join('|');
}

/**
 * A1111's state as an engine progress update. `job_count` is 0 when the server is idle (nothing to
 * report), -1 between `state.begin()` and the first sampling iteration (checkpoint loading, prompt
 * parsing), and the number of iterations while sampling; `sampling_steps` is stale until sampling
 * starts, so it is only trusted once `job_count` is positive.
 */
export function progressUpdate(state: A1111Progress): EngineProgress | undefined {
  if (state.jobCount === 0) return undefined;
  if (state.jobCount < 0 || state.samplingSteps <= 0) return { phase: 'loading', message: 'A1111 is preparing the job (loading the checkpoint?)' };
  // After the last iteration A1111 calls nextjob(), which resets sampling_step to 0 while job_no
  // reaches job_count: that is "all steps done", not "back to step 0".
  const done = state.jobNo >= state.jobCount;
  const update: EngineProgress = {
    phase: 'generating',
    step: done ? Math.floor(state.samplingSteps) : Math.max(0, Math.floor(state.samplingStep)),
    total: Math.floor(state.samplingSteps),
    fraction: Math.min(1, Math.max(0, state.progress)),
  };
  if (state.etaRelative > 0 && Number.isFinite(state.etaRelative)) update.message = `about ${Math.ceil(state.etaRelative)} s left`;
  return update;
}
