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

/** Ports of IdleMemoryReducer, for tests: V8's gc and the process's resident set size. */
export interface IdleMemoryPorts {
  gc?: Gc;
  rss?: () => number;
  /** How far the resident set may grow back after a reduction before the next one runs. */
  regrowBytes?: number;
}

/**
 * 1 MiB: an idle daemon grows back ~0.4 MiB per 30 s and sits 2–3 MiB under bench:idle's 80 MB
 * target after a reduction, so this reduces about every minute and a half and keeps the margin.
 */
const REGROW_BYTES = 1024 * 1024;

/**
 * Gives memory back when the daemon goes quiet. V8 keeps its young generation as large as the
 * busiest moment needed (16 MiB after start-up, again after a job), and Node, unlike a browser,
 * never asks V8 to shrink it when the process idles. So once nothing has happened for `idleMs`
 * (no job running), one memory-reducing full GC (V8's "last resort" flavour) shrinks the young
 * generation and returns its pages: about 10 MiB of an idle daemon's RSS, for one GC of a small
 * heap. While the quiet lasts it looks again every `idleMs` × 6, and reduces again only if the
 * resident set grew back by `regrowBytes` (heartbeats and status requests grow the young
 * generation by a few MiB over minutes). One such GC takes 55–70 ms and 100–125 ms of CPU with
 * V8's helper threads on a slow 2-core machine: one every 30 s, whatever the growth, was 0.37 % of
 * a core, most of the idle daemon's 0.52–0.55 % (bench/README.md, "npm run bench:idle").
 */
export class IdleMemoryReducer {
  readonly #idleMs: number;
  readonly #busy: () => boolean;
  readonly #gc: Gc | undefined;
  readonly #rss: () => number;
  readonly #regrowBytes: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The resident set right after the last reduction; undefined until one ran since the last activity. */
  #rssAfter: number | undefined;
  /** How many reductions ran (tests, status). */
  reductions = 0;
  /** How many quiet checks found too little regrowth to reduce again (tests). */
  skipped = 0;

  constructor(idleMs: number, busy: () => boolean, ports: IdleMemoryPorts = {}) {
    this.#idleMs = idleMs;
    this.#busy = busy;
    this.#gc = ports.gc ?? memoryReducingGc();
    this.#rss = ports.rss ?? (() => process.memoryUsage.rss());
    this.#regrowBytes = ports.regrowBytes ?? REGROW_BYTES;
    this.activity();
  }

  /** Something happened (a job started or ended): wait for quiet again, then reduce. */
  activity(): void {
    if (this.#stopped || !this.#gc) return;
    this.#rssAfter = undefined;
    this.#arm(this.#idleMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #reduce(): void {
    if (this.#busy()) return this.activity();
    if (this.#rssAfter === undefined || this.#rss() - this.#rssAfter >= this.#regrowBytes) {
      this.#gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      this.reductions++;
      this.#rssAfter = this.#rss();
    } else {
      this.skipped++;
    }
    this.#arm(this.#idleMs * 6);
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#reduce(), ms);
    this.#timer.unref();
  }
}
