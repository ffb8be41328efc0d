import type { SessionState } from '../session/index.ts';
import type { JobEnded } from './job-board.ts';
import { Counter, createMetricsRegistry, Gauge, Histogram } from './prometheus.ts';

/** Every session state, so a scrape always lists each one (0, or 1 for the current). */
const SESSION_STATES: ReadonlyArray<SessionState['state']> = ['waiting_for_approval', 'connecting', 'connected', 'reconnecting', 'auth_failed', 'fatal', 'stopped'];
/** Seconds: a synthetic job takes milliseconds, a big image model minutes. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export interface MetricsSnapshot {
  version: string;
  session: SessionState['state'];
  /** Engine time against wall time since the first engine run (the JobRunner's meter). */
  engineBusy: { busyMs: number; sinceMs: number };
  paused: boolean;
  busy: boolean;
}

/** The worker's Prometheus metrics, served at `GET /metrics` on the local API. */
export class WorkerMetrics {
  readonly registry = createMetricsRegistry();
  readonly #jobs = new Counter({ name: 'studio_worker_jobs_total', help: 'Jobs that ended, by task kind, outcome (done, failed, cancelled) and source (studio, local).', labelNames: ['kind', 'outcome', 'source'] as const, registers: [this.registry] });
  readonly #duration = new Histogram({ name: 'studio_worker_job_duration_seconds', help: 'How long jobs took from getting the engine to their end, by task kind.', labelNames: ['kind'] as const, buckets: DURATION_BUCKETS, registers: [this.registry] });
  readonly #busyRatio = new Gauge({ name: 'studio_worker_engine_busy_ratio', help: 'Engine time against wall time since the first job started (0..1).', registers: [this.registry] });
  readonly #busySeconds = new Counter({ name: 'studio_worker_engine_busy_seconds_total', help: 'Seconds the engines spent running jobs.', registers: [this.registry] });
  readonly #downloadBytes = new Counter({ name: 'studio_worker_download_bytes_total', help: 'Model file bytes received over the network.', registers: [this.registry] });
  readonly #session = new Gauge({ name: 'studio_worker_session_state', help: 'The studio session state: 1 for the current state, 0 for the others.', labelNames: ['state'] as const, registers: [this.registry] });
  readonly #reconnects = new Counter({ name: 'studio_worker_reconnects_total', help: 'Times the studio session went into reconnecting.', registers: [this.registry] });
  readonly #paused = new Gauge({ name: 'studio_worker_paused', help: '1 while the operator paused taking studio jobs.', registers: [this.registry] });
  readonly #busy = new Gauge({ name: 'studio_worker_busy', help: '1 while a job holds the job gate.', registers: [this.registry] });
  readonly #info = new Gauge({ name: 'studio_worker_info', help: 'Always 1; the labels say which worker version runs.', labelNames: ['version'] as const, registers: [this.registry] });
  /** What #busySeconds has been advanced to (prom-client reads values back only asynchronously). */
  #busySecondsCounted = 0;

  jobEnded(ended: JobEnded): void {
    this.#jobs.inc({ kind: ended.kind, outcome: ended.status, source: ended.source });
    this.#duration.observe({ kind: ended.kind }, ended.durationSeconds);
  }

  downloaded(bytes: number): void {
    if (bytes > 0) this.#downloadBytes.inc(bytes);
  }

  reconnected(): void {
    this.#reconnects.inc();
  }

  render(snapshot: MetricsSnapshot): Promise<string> {
    const { busyMs, sinceMs } = snapshot.engineBusy;
    this.#busyRatio.set(sinceMs > 0 ? Math.min(1, busyMs / sinceMs) : 0);
    // A counter that follows the meter: advance it to the meter's total (it only grows).
    const busySeconds = busyMs / 1000;
    if (busySeconds > this.#busySecondsCounted) {
      this.#busySeconds.inc(busySeconds - this.#busySecondsCounted);
      this.#busySecondsCounted = busySeconds;
    }
    for (const state of SESSION_STATES) this.#session.set({ state }, state === snapshot.session ? 1 : 0);
    this.#paused.set(snapshot.paused ? 1 : 0);
    this.#busy.set(snapshot.busy ? 1 : 0);
    this.#info.reset();
    this.#info.set({ version: snapshot.version }, 1);
    return this.registry.metrics();
  }
}
