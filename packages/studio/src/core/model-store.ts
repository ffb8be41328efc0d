import type { ModelEntry } from '@studio-worker/protocol';
import type { SqlPort, SqlValue } from './ports.ts';

export interface ModelRow {
  id: string;
  kind: string;
  display_name: string | null;
  description: string | null;
  vram_gb_estimate: number;
  enabled: number;
  source: string;
  pool: string | null;
  created_at: number;
  updated_at: number;
}

/** Every statement about the `models` table. `source` is stored as the caller serialized it. */
export class ModelStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  list(): ModelRow[] {
    return this.sql.all<ModelRow>('SELECT * FROM models ORDER BY kind, id');
  }

  /** Every row as stored (`SELECT *`: a database of an older schema, without `pool`, reads too; the export). */
  all(): ModelRow[] {
    return this.sql.all<ModelRow>('SELECT * FROM models ORDER BY id');
  }

  get(id: string): ModelRow | undefined {
    return this.sql.get<ModelRow>('SELECT * FROM models WHERE id = ?', id);
  }

  insert(m: ModelEntry, source: string, now: number): void {
    this.sql.run(
      `INSERT INTO models (id, kind, display_name, description, vram_gb_estimate, enabled, source, pool, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      m.id,
      ...columns(m, source),
      now,
      now,
    );
  }

  update(id: string, m: ModelEntry, source: string, now: number): void {
    this.sql.run(
      `UPDATE models SET kind = ?, display_name = ?, description = ?, vram_gb_estimate = ?, enabled = ?, source = ?, pool = ?, updated_at = ? WHERE id = ?`,
      ...columns(m, source),
      now,
      id,
    );
  }
}

/** kind, display_name, description, vram_gb_estimate, enabled, source, pool: in the order both statements name them. */
function columns(m: ModelEntry, source: string): SqlValue[] {
  return [m.kind, m.displayName ?? null, m.description ?? null, m.vramGbEstimate, m.enabled ? 1 : 0, source, m.pool ?? null];
}
