import type { LogEntry } from '@studio-worker/protocol';
import type { SqlPort } from './ports.ts';

/** A shipped log line as the API answers it: `seq` orders a worker's lines and pages them. */
export interface WorkerLogLine {
  seq: number;
  ts: string;
  level: string;
  category: string;
  message: string;
  jobId?: string;
}

/** Every statement about the `worker_logs` table: the lines workers ship in `logBatch` frames. */
export class WorkerLogStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  /** One batch, in one transaction: all of its lines or none. */
  append(workerId: string, entries: readonly LogEntry[], receivedAt: number): void {
    this.sql.transaction(() => {
      for (const e of entries) {
        this.sql.run(
          'INSERT INTO worker_logs (worker_id, ts, level, category, message, job_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          workerId,
          e.ts,
          e.level,
          e.category,
          e.message,
          e.jobId ?? null,
          receivedAt,
        );
      }
    });
  }

  /** A worker's lines after sequence number `after`, oldest first. */
  after(workerId: string, after: number, limit: number): WorkerLogLine[] {
    return this.sql
      .all<{ id: number; ts: string; level: string; category: string; message: string; job_id: string | null }>(
        'SELECT id, ts, level, category, message, job_id FROM worker_logs WHERE worker_id = ? AND id > ? ORDER BY id LIMIT ?',
        workerId,
        after,
        limit,
      )
      .map((r) => ({ seq: r.id, ts: r.ts, level: r.level, category: r.category, message: r.message, jobId: r.job_id ?? undefined }));
  }

  /** Keep the newest `linesPerWorker` lines of each worker. */
  /** Whether any worker has shipped a line (pruning matters only then). */
  any(): boolean {
    return this.sql.get('SELECT 1 AS x FROM worker_logs LIMIT 1') !== undefined;
  }

  prune(linesPerWorker: number): void {
    for (const { worker_id } of this.sql.all<{ worker_id: string }>('SELECT DISTINCT worker_id FROM worker_logs')) {
      this.sql.run(
        'DELETE FROM worker_logs WHERE worker_id = ? AND id <= (SELECT id FROM worker_logs WHERE worker_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)',
        worker_id,
        worker_id,
        linesPerWorker,
      );
    }
  }
}
