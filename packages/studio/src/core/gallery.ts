import type { JobView } from '@studio-worker/protocol';
import type { JobRow } from './job-store.ts';
import type { SqlPort } from './ports.ts';
import { jobView } from './views.ts';

export interface GalleryFilter {
  model?: string;
  gameId?: string;
  /** A part of the asset name (case-insensitive). */
  asset?: string;
  /** Finished at or after / before these epoch milliseconds. */
  since?: number;
  until?: number;
  /** Page: jobs older than this seq. */
  before?: number;
  limit?: number;
}

/**
 * Finished jobs with their results, newest first, for the results gallery: filtered by model,
 * game, asset name and finishing date. Walks the jobs backwards by seq, so a page costs about as
 * many rows as it skips, not the size of the table.
 */
export class Gallery {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  page(filter: GalleryFilter): { jobs: JobView[]; nextBefore?: number } {
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
    const limit = Math.min(Math.max(filter.limit ?? 48, 1), 200);
    const rows = this.sql.all<JobRow>(`SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`, ...params, limit);
    return { jobs: rows.map((r) => jobView(r)), nextBefore: rows.length === limit ? rows.at(-1)?.seq : undefined };
  }
}
