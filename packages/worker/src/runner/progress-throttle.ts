import type { EngineProgress } from '../engines/engine.ts';

/**
 * Engines report progress as often as they like; the wire gets at most one frame per interval per
 * job. The latest update always wins (intermediate ones are dropped), and `stop()` drops whatever is
 * still waiting so a progress frame never lands after — or delays — the job's result.
 */
export class ProgressThrottle {
  readonly #intervalMs: number;
  readonly #emit: (update: EngineProgress) => void;
  #lastSentAt = -Infinity;
  #pending: EngineProgress | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(intervalMs: number, emit: (update: EngineProgress) => void) {
    this.#intervalMs = intervalMs;
    this.#emit = emit;
  }

  push(update: EngineProgress): void {
    if (this.#stopped) return;
    const now = performance.now();
    const wait = this.#lastSentAt + this.#intervalMs - now;
    if (wait <= 0 && this.#timer === null) {
      this.#send(update, now);
      return;
    }
    this.#pending = update;
    if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        const latest = this.#pending;
        this.#pending = null;
        if (latest && !this.#stopped) this.#send(latest, performance.now());
      }, Math.max(wait, 0));
      this.#timer.unref();
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#pending = null;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #send(update: EngineProgress, now: number): void {
    this.#lastSentAt = now;
    try {
      this.#emit(update);
    } catch {
      // A progress frame is droppable; a failure to send one must not touch the job.
    }
  }
}

/** Two frames per second per job. */
export const PROGRESS_INTERVAL_MS = 500;
