import type { Ports } from './ports.ts';

export interface GcReport {
  /** Jobs whose results were deleted now (they keep their metadata, marked expired). */
  expiredJobs: number;
  /** Result files the host must delete (after the change is committed). */
  files: string[];
  freedBytes: number;
  /** Job events and webhook deliveries older than the window that were pruned. */
  prunedEvents: number;
}

export interface StorageReport {
  resultFiles: number;
  resultBytes: number;
  jsonResults: number;
  expiredJobs: number;
}

/** Events and finished deliveries are kept this long (SSE resume window, delivery history). */
export const EVENT_KEEP_MS = 7 * 24 * 3600_000;

/**
 * Retention: results of jobs that ended before a cutoff are deleted, the jobs stay (marked
 * expired). The database is changed first and the files deleted after the commit: a crash in
 * between leaves an unreferenced file, never a job pointing at a missing one.
 */
export class Retention {
  private readonly ports: Ports;
  constructor(ports: Ports) {
    this.ports = ports;
  }

  collect(maxAgeMs: number, limit = 5000): GcReport {
    const { sql, clock } = this.ports;
    const now = clock.now();
    const cutoff = now - maxAgeMs;
    return sql.transaction(() => {
      const rows = sql.all<{ id: string; result_file: string | null; result_bytes: number | null }>(
        `SELECT id, result_file, result_bytes FROM jobs WHERE status = 'done' AND result_type IN ('file', 'json') AND completed_at < ? LIMIT ?`,
        cutoff,
        limit,
      );
      for (const row of rows) {
        sql.run(`UPDATE jobs SET result_type = 'expired', result_json = NULL, result_file = NULL, updated_at = ? WHERE id = ? AND status = 'done'`, now, row.id);
      }
      // Keep the newest event whatever its age: event ids must keep growing for SSE clients.
      const prunedEvents =
        sql.run('DELETE FROM job_events WHERE at < ? AND id < (SELECT MAX(id) FROM job_events)', now - EVENT_KEEP_MS) +
        sql.run(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?`, now - EVENT_KEEP_MS);
      return {
        expiredJobs: rows.length,
        files: rows.flatMap((r) => (r.result_file ? [r.result_file] : [])),
        freedBytes: rows.reduce((n, r) => n + (r.result_file ? (r.result_bytes ?? 0) : 0), 0),
        prunedEvents,
      };
    });
  }

  storage(): StorageReport {
    const row = this.ports.sql.get<{ files: number; bytes: number | null; json: number; expired: number }>(
      `SELECT SUM(result_type = 'file') AS files, SUM(CASE WHEN result_type = 'file' THEN result_bytes ELSE 0 END) AS bytes,
         SUM(result_type = 'json') AS json, SUM(result_type = 'expired') AS expired
       FROM jobs WHERE status = 'done'`,
    );
    return { resultFiles: row?.files ?? 0, resultBytes: row?.bytes ?? 0, jsonResults: row?.json ?? 0, expiredJobs: row?.expired ?? 0 };
  }
}
