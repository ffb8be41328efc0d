import type { JobRow } from './job-store.ts';
import type { SqlPort } from './ports.ts';

/** What the gallery filters finished jobs by (all optional). */
export interface FinishedFilter {
  model?: string;
  gameId?: string;
  /** A part of the asset name (case-insensitive). */
  asset?: string;
  /** Finished at or after / before these epoch milliseconds. */
  since?: number;
  until?: number;
  /** Page: jobs older than this seq. */
  before?: number;
}

/**
 * Every statement about the results of finished jobs, read or expired as a whole (the gallery,
 * retention, the storage report). The job's own life (claims, attempts, its result arriving) is
 * JobStore's.
 */
export class FinishedJobStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  /** Done jobs that still have their result, newest first (walks back by seq from `before`). */
  page(filter: FinishedFilter, limit: number): JobRow[] {
    const where = [`status = 'done'`, `result_type IN ('file', 'json')`];
    const params: Array<string | number> = [];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined || value === '') return;
      where.push(clause);
      params.push(value);
    };
    add('model = ?', filter.model);
    add('game_id = ?', filter.gameId);
    add(`asset_name LIKE ? ESCAPE '\\'`, filter.asset === undefined || filter.asset === '' ? undefined : `%${filter.asset.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    add('completed_at >= ?', filter.since);
    add('completed_at < ?', filter.until);
    add('seq < ?', filter.before);
    return this.sql.all<JobRow>(`SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`, ...params, limit);
  }

  /** Done jobs whose result is older than `cutoff` (at most `limit`). */
  resultsBefore(cutoff: number, limit: number): Array<{ id: string; result_file: string | null; result_bytes: number | null }> {
    return this.sql.all(`SELECT id, result_file, result_bytes FROM jobs WHERE status = 'done' AND result_type IN ('file', 'json') AND completed_at < ? LIMIT ?`, cutoff, limit);
  }

  /** Forget a done job's result; the job stays, marked expired. */
  expire(jobId: string, now: number): void {
    this.sql.run(`UPDATE jobs SET result_type = 'expired', result_json = NULL, result_file = NULL, updated_at = ? WHERE id = ? AND status = 'done'`, now, jobId);
  }

  /** Result files and bytes, JSON results and expired results of done jobs. */
  totals(): { files: number; bytes: number | null; json: number; expired: number } | undefined {
    return this.sql.get(
      `SELECT SUM(result_type = 'file') AS files, SUM(CASE WHEN result_type = 'file' THEN result_bytes ELSE 0 END) AS bytes,
         SUM(result_type = 'json') AS json, SUM(result_type = 'expired') AS expired
       FROM jobs WHERE status = 'done'`,
    );
  }
}
