import { enginesByKind, type JobStatus } from '@studio-worker/protocol';
import type { Dispatcher } from './dispatcher.ts';
import type { Ports } from './ports.ts';
import type { Stores } from './stores.ts';
import { workerView } from './views.ts';

/** What a metrics scrape reads from the studio: gauges as they are now, and what ended since the last scrape. */
export interface MetricsSnapshot {
  /** Jobs not yet ended, by model and status (queued, claimed, running). */
  open: Array<{ model: string; status: JobStatus; count: number }>;
  /** Online workers by the engines they serve. */
  workersOnline: Array<{ engine: string; count: number }>;
  /** Jobs that ended since the previous snapshot. */
  ended: Array<{ model: string; status: JobStatus; waitMs: number | null; runMs: number | null; resultBytes: number }>;
  /** Claims that ended since the previous snapshot, by outcome (done, failed, lost = lease expired or worker gone, …). */
  attempts: Array<{ outcome: string; count: number }>;
}

/**
 * Metrics from SQL, the same on both hosts. Counters are read incrementally: job endings from the
 * job_events table and claim endings from job_attempts, each after the last id already counted, so
 * a scrape costs what happened since the previous one, not the size of the history.
 */
export class MetricsSource {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private readonly dispatcher: Dispatcher;
  private lastEvent: number;
  private lastAttempt: number;

  constructor(ports: Ports, stores: Stores, dispatcher: Dispatcher) {
    this.ports = ports;
    this.stores = stores;
    this.dispatcher = dispatcher;
    // Counters start at this process's start (Prometheus handles the reset), not at the dawn of the history.
    this.lastEvent = stores.events.lastEventId();
    this.lastAttempt = stores.metrics.lastAttemptId();
  }

  snapshot(): MetricsSnapshot {
    const { metrics } = this.stores;
    const open = metrics.openCounts();
    const ended = metrics.endedAfter(this.lastEvent);
    this.lastEvent = ended.at(-1)?.id ?? this.lastEvent;
    const attemptRows = metrics.attemptsAfter(this.lastAttempt);
    this.lastAttempt = attemptRows.at(-1)?.id ?? this.lastAttempt;
    const attempts = new Map<string, number>();
    for (const a of attemptRows) attempts.set(a.outcome, (attempts.get(a.outcome) ?? 0) + 1);

    const now = this.ports.clock.now();
    const engines = new Map<string, number>();
    for (const row of this.stores.workers.list()) {
      const view = workerView(row, this.dispatcher.session(row.id), now);
      if (view.state !== 'online' || !view.capabilities) continue;
      const served = new Set([...enginesByKind(view.capabilities).values()].flatMap((set) => [...set]));
      for (const engine of served) engines.set(engine, (engines.get(engine) ?? 0) + 1);
    }
    return {
      open,
      workersOnline: [...engines].map(([engine, count]) => ({ engine, count })),
      ended: ended.map((e) => ({
        model: e.model,
        status: e.status,
        waitMs: e.claimed_at === null ? null : e.claimed_at - e.created_at,
        runMs: e.started_at === null || e.completed_at === null ? null : e.completed_at - e.started_at,
        resultBytes: e.status === 'done' ? (e.result_bytes ?? 0) : 0,
      })),
      attempts: [...attempts].map(([outcome, count]) => ({ outcome, count })),
    };
  }
}
