import type { Ports } from './ports.ts';
import type { Stores } from './stores.ts';

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
  private readonly stores: Stores;
  constructor(ports: Ports, stores: Stores) {
    this.ports = ports;
    this.stores = stores;
  }

  collect(maxAgeMs: number, limit = 5000): GcReport {
    const { finished, events } = this.stores;
    const now = this.ports.clock.now();
    return this.ports.sql.transaction(() => {
      const rows = finished.resultsBefore(now - maxAgeMs, limit);
      for (const row of rows) finished.expire(row.id, now);
      const prunedEvents = events.pruneBefore(now - EVENT_KEEP_MS);
      return {
        expiredJobs: rows.length,
        files: rows.flatMap((r) => (r.result_file ? [r.result_file] : [])),
        freedBytes: rows.reduce((n, r) => n + (r.result_file ? (r.result_bytes ?? 0) : 0), 0),
        prunedEvents,
      };
    });
  }

  storage(): StorageReport {
    const row = this.stores.finished.totals();
    return { resultFiles: row?.files ?? 0, resultBytes: row?.bytes ?? 0, jsonResults: row?.json ?? 0, expiredJobs: row?.expired ?? 0 };
  }
}
