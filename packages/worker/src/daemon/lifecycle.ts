/**
 * Where the daemon is in its life, as one state (after Temporal's worker states): nothing else in
 * the daemon keeps a flag of its own about pausing or stopping.
 *
 *   starting ──▶ running ◀──▶ paused
 *      │            │           │
 *      └────────────┴─────┬─────┘
 *                         ▼
 *                     draining ──▶ stopping
 *
 * - `starting`: config read, lock held, engines and the local API coming up; no studio session yet.
 * - `running`: taking studio offers. `paused`: the operator paused claiming (runtime only).
 * - `draining`: a stop was asked for (signal, update, parent gone, local API, displaced): no new
 *   offers, the running job gets its grace, results are flushed.
 * - `stopping`: the session, the local API and the engines are being closed; the lock goes last.
 */
export type DaemonPhase = 'starting' | 'running' | 'paused' | 'draining' | 'stopping';

/** What to do with a SIGTERM/SIGINT: begin a graceful stop, ignore a duplicate, or exit at once. */
export type SignalVerdict = 'stop' | 'repeat' | 'exit-now';

/**
 * A repeat signal within this window is the same request arriving twice (Ctrl-C reaches the whole
 * process group, and a launcher forwards its own SIGTERM a moment later), not an impatient second one.
 */
export const REPEAT_SIGNAL_WINDOW_MS = 500;

const NEXT: Record<DaemonPhase, readonly DaemonPhase[]> = {
  starting: ['running', 'paused', 'draining'],
  running: ['paused', 'draining'],
  paused: ['running', 'draining'],
  draining: ['stopping'],
  stopping: [],
};

export class Lifecycle {
  #phase: DaemonPhase = 'starting';
  /** The first stop request (a signal, or anything that called for a shutdown) and when it came. */
  #stopAsked: { why: string; at: number } | null = null;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  get phase(): DaemonPhase {
    return this.#phase;
  }

  get paused(): boolean {
    return this.#phase === 'paused';
  }

  /** Draining or stopping: offers are held back and the end is near. */
  get shuttingDown(): boolean {
    return this.#phase === 'draining' || this.#phase === 'stopping';
  }

  /** Why a stop was asked for (a signal while starting) that has not begun yet: to honour once it runs. */
  get pendingStop(): string | undefined {
    return this.shuttingDown ? undefined : this.#stopAsked?.why;
  }

  /** Start-up is done: serve (or stay paused, when the operator paused during start-up). */
  started(): void {
    if (this.#phase === 'starting') this.#move('running');
  }

  /** Pause or resume claiming; false when nothing changed (already so, or shutting down). */
  setPaused(paused: boolean): boolean {
    const next = paused ? 'paused' : 'running';
    if (this.#phase === next || this.shuttingDown || (!paused && this.#phase === 'starting')) return false;
    this.#move(next);
    return true;
  }

  /** SIGTERM/SIGINT: the first asks for a stop; another within the window is the same one. */
  signal(signal: NodeJS.Signals): SignalVerdict {
    if (this.#stopAsked === null) {
      this.#stopAsked = { why: signal, at: this.#now() };
      return 'stop';
    }
    return this.#now() - this.#stopAsked.at < REPEAT_SIGNAL_WINDOW_MS ? 'repeat' : 'exit-now';
  }

  /** Begin a graceful stop; false when one is under way already. */
  drain(why: string): boolean {
    if (this.shuttingDown) return false;
    // A later signal is measured from the moment the stop began, whoever asked for it.
    this.#stopAsked = { why, at: this.#now() };
    this.#move('draining');
    return true;
  }

  /** Jobs are settled and results flushed: close everything. */
  stop(): void {
    this.#move('stopping');
  }

  #move(next: DaemonPhase): void {
    if (!NEXT[this.#phase].includes(next)) throw new Error(`daemon lifecycle: no way from ${this.#phase} to ${next}`);
    this.#phase = next;
  }
}
