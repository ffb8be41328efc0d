/** Gives the gate back; calling it more than once is harmless. */
export type Release = () => void;

/**
 * One job at a time on this machine (DESIGN.md worker rule 2): studio jobs, and later local API jobs
 * and the auto-updater, all go through the same gate, so they never share the GPU by accident.
 * `busy` means "the engine is busy". Waiters (a prefetched studio job) are served first come, first
 * served: a release hands the gate straight to the next waiter, so nothing can slip in between.
 */
export class JobGate {
  #held = false;
  readonly #waiters: Array<(release: Release) => void> = [];

  get busy(): boolean {
    return this.#held;
  }

  /** The gate, or null when something else holds it. */
  tryAcquire(): Release | null {
    if (this.#held) return null;
    this.#held = true;
    return this.#releaser();
  }

  /** The gate once it is free; rejects with the signal's reason when aborted while waiting. */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const grant = (release: Release) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const index = this.#waiters.indexOf(grant);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next(this.#releaser());
      else this.#held = false;
    };
  }
}
