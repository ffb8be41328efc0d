import { enginesByKind, type JobStatus } from '@studio-worker/protocol';
import type { Dispatcher } from './dispatcher.ts';
import type { Ports } from './ports.ts';
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
  private readonly dispatcher: Dispatcher;
  private lastEvent: number;
  private lastAttempt: number;

  constructor(ports: Ports, dispatcher: Dispatcher) {
    this.ports = ports;
    this.dispatcher = dispatcher;
    // Counters start at this process's start (Prometheus handles the reset), not at the dawn of the history.
    this.lastEvent = ports.sql.get<{ id: number | null }>('SELECT MAX(id) AS id FROM job_events')?.id ?? 0;
    this.lastAttempt = ports.sql.get<{ id: number | null }>('SELECT MAX(rowid) AS id FROM job_attempts')?.id ?? 0;
  }

  snapshot(): MetricsSnapshot {
    const { sql } = this.ports;
    const open = sql.all<{ model: string; status: JobStatus; count: number }>(
      `SELECT model, status, COUNT(*) AS count FROM jobs WHERE status IN ('queued', 'claimed', 'running') GROUP BY model, status`,
    );
    const ended = sql.all<{ id: number; model: string; status: JobStatus; created_at: number; claimed_at: number | null; started_at: number | null; completed_at: number | null; result_bytes: number | null }>(
      `SELECT e.id, j.model, e.status, j.created_at, j.claimed_at, j.started_at, j.completed_at, j.result_bytes
       FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.id > ? ORDER BY e.id LIMIT 100000`,
      this.lastEvent,
    );
    this.lastEvent = ended.at(-1)?.id ?? this.lastEvent;
    const attemptRows = sql.all<{ id: number; outcome: string }>('SELECT rowid AS id, outcome FROM job_attempts WHERE rowid > ? ORDER BY rowid LIMIT 100000', this.lastAttempt);
    this.lastAttempt = attemptRows.at(-1)?.id ?? this.lastAttempt;
    const attempts = new Map<string, number>();
    for (const a of attemptRows) attempts.set(a.outcome, (attempts.get(a.outcome) ?? 0) + 1);

    const now = this.ports.clock.now();
    const engines = new Map<string, number>();
    for (const row of this.dispatcher.workers.list()) {
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
