/** Gives the mutex back; calling it more than once is harmless. */
export type Release = () => void;

/**
 * The worker's one abortable FIFO mutex: the job gate, an A1111 server's one-request-at-a-time lock
 * and the ONNX host's one-job lock are all this. Waiters are served first come, first served; a
 * release hands the mutex straight to the next waiter (it stays held), so nothing can slip in
 * between; a waiter whose signal aborts leaves the queue and is rejected with the signal's reason.
 */
export class Mutex {
  #held = false;
  readonly #waiters: Array<(release: Release) => void> = [];

  get held(): boolean {
    return this.#held;
  }

  /** The mutex, or null when something else holds it. */
  tryAcquire(): Release | null {
    if (this.#held) return null;
    this.#held = true;
    return this.#releaser();
  }

  /** The mutex once it is free; rejects with the signal's reason when aborted before that. */
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
