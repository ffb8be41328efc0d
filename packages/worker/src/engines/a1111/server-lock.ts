import { Mutex } from '../../platform/mutex.ts';
import { toEngineFailure } from '../engine.ts';

/**
 * A1111 runs one generation at a time under its global queue lock and reports progress globally,
 * so the engine sends one request at a time per server: a second job waits here (reporting
 * `queued`), where it can still be cancelled at once. The worker's one mutex, its abort told as a
 * `cancelled` engine failure.
 */
export class ServerLock {
  readonly #mutex = new Mutex();

  get held(): boolean {
    return this.#mutex.held;
  }

  /** Resolves with a release function; rejects with `cancelled` if `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<() => void> {
    return this.#mutex.acquire(signal).catch(() => {
      throw toEngineFailure(signal.reason, signal);
    });
  }
}

/** One lock per server address, shared by every engine instance that points at it. */
const locks = new Map<string, ServerLock>();

export function serverLock(url: string): ServerLock {
  const key = url.replace(/\/+$/, '').toLowerCase();
  let lock = locks.get(key);
  if (lock === undefined) locks.set(key, (lock = new ServerLock()));
  return lock;
}
