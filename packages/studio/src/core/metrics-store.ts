import type { JobStatus } from '@studio-worker/protocol';
import type { SqlPort } from './ports.ts';

/** A job that ended, with the times its metrics are made of. */
export interface EndedRow {
  id: number;
  model: string;
  status: JobStatus;
  created_at: number;
  claimed_at: number | null;
  started_at: number | null;
  completed_at: number | null;
  result_bytes: number | null;
}

/**
 * Every statement a metrics scrape makes: gauges over the open jobs, and what ended after a given
 * job event / job attempt (both tables only grow between prunes, so a scrape reads only the new rows).
 */
export class MetricsStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  lastAttemptId(): number {
    return this.sql.get<{ id: number | null }>('SELECT MAX(rowid) AS id FROM job_attempts')?.id ?? 0;
  }

  /** Jobs not yet ended, by model and status. */
  openCounts(): Array<{ model: string; status: JobStatus; count: number }> {
    return this.sql.all(`SELECT model, status, COUNT(*) AS count FROM jobs WHERE status IN ('queued', 'claimed', 'running') GROUP BY model, status`);
  }

  /** Job events after `afterEventId` with their job's times, oldest first. */
  endedAfter(afterEventId: number): EndedRow[] {
    return this.sql.all<EndedRow>(
      `SELECT e.id, j.model, e.status, j.created_at, j.claimed_at, j.started_at, j.completed_at, j.result_bytes
       FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.id > ? ORDER BY e.id LIMIT 100000`,
      afterEventId,
    );
  }

  /** Claim endings after `afterAttemptId`, oldest first. */
  attemptsAfter(afterAttemptId: number): Array<{ id: number; outcome: string }> {
    return this.sql.all('SELECT rowid AS id, outcome FROM job_attempts WHERE rowid > ? ORDER BY rowid LIMIT 100000', afterAttemptId);
  }
}
