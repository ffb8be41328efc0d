import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** V8's own `gc`, reachable from a fresh context once `--expose-gc` is set; undefined if it is not. */
function memoryReducingGc(): Gc | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('typeof gc === "function" ? gc : undefined') as Gc | undefined;
    return gc;
  } catch {
    return undefined;
  }
}

/**
 * Gives memory back when the daemon goes quiet. V8 keeps its young generation as large as the
 * busiest moment needed (16 MiB after start-up, again after a job), and Node, unlike a browser,
 * never asks V8 to shrink it when the process idles. So once nothing has happened for `idleMs`
 * (no job running), one memory-reducing full GC (V8's "last resort" flavour) shrinks the young
 * generation and returns its pages: about 10 MiB of an idle daemon's RSS, for one GC of a small
 * heap. While the quiet lasts it runs again every `idleMs` × 6 (heartbeats and status requests
 * grow the young generation back by a few MiB over minutes).
 */
export class IdleMemoryReducer {
  readonly #idleMs: number;
  readonly #busy: () => boolean;
  readonly #gc: Gc | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** How many reductions ran (tests, status). */
  reductions = 0;

  constructor(idleMs: number, busy: () => boolean, gc: Gc | undefined = memoryReducingGc()) {
    this.#idleMs = idleMs;
    this.#busy = busy;
    this.#gc = gc;
    this.activity();
  }

  /** Something happened (a job started or ended): wait for quiet again. */
  activity(): void {
    if (this.#stopped || !this.#gc) return;
    this.#arm(this.#idleMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #reduce(): void {
    if (this.#busy()) return this.activity();
    this.#gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    this.reductions++;
    this.#arm(this.#idleMs * 6);
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#reduce(), ms);
    this.#timer.unref();
  }
}
