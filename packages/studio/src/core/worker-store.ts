import type { SqlPort } from './ports.ts';

export interface WorkerRow {
  id: string;
  label: string;
  machine_name: string;
  install_id: string | null;
  token_hash: string | null;
  capabilities: string | null;
  approved_at: number;
  last_heartbeat_at: number | null;
  last_connected_at: number | null;
  consecutive_failures: number;
  cooldown_until: number | null;
  deleted_at: number | null;
  /** From the registration request that created it (null for workers created by the operator). */
  user_agent?: string | null;
}

/** Worker columns plus the userAgent of the registration request it came from. */
const WORKER_SELECT = 'SELECT w.*, (SELECT r.user_agent FROM registration_requests r WHERE r.worker_id = w.id AND r.worker_id IS NOT NULL LIMIT 1) AS user_agent FROM workers w';

/** Every statement about the `workers` table. */
export class WorkerStore {
  private readonly sql: SqlPort;
  /** Workers whose consecutive_failures was read as 0 since their last failure (see resetFailures). */
  private readonly noFailures = new Set<string>();
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  /** Every worker not deleted, as stored (`SELECT *`: older schemas read too; the export). */
  allLive(): WorkerRow[] {
    return this.sql.all<WorkerRow>('SELECT * FROM workers WHERE deleted_at IS NULL ORDER BY approved_at, id');
  }

  get(id: string): WorkerRow | undefined {
    return this.sql.get<WorkerRow>(`${WORKER_SELECT} WHERE w.id = ?`, id);
  }

  list(): WorkerRow[] {
    return this.sql.all<WorkerRow>(`${WORKER_SELECT} WHERE w.deleted_at IS NULL ORDER BY w.approved_at`);
  }

  create(row: { id: string; label: string; machineName: string; installId: string | null; capabilities: string | null; tokenHash: string | null; now: number }): void {
    this.sql.run(
      `INSERT INTO workers (id, label, machine_name, install_id, token_hash, capabilities, approved_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.label,
      row.machineName,
      row.installId,
      row.tokenHash,
      row.capabilities,
      row.now,
    );
  }

  setTokenHash(id: string, tokenHash: string): void {
    this.sql.run('UPDATE workers SET token_hash = ? WHERE id = ? AND deleted_at IS NULL', tokenHash, id);
  }

  markConnected(id: string, now: number, capabilities: string): void {
    this.sql.run(
      'UPDATE workers SET last_connected_at = ?, last_heartbeat_at = ?, capabilities = ? WHERE id = ?',
      now,
      now,
      capabilities,
      id,
    );
  }

  touchHeartbeat(id: string, now: number, capabilities: string | null): void {
    if (capabilities === null) this.sql.run('UPDATE workers SET last_heartbeat_at = ? WHERE id = ?', now, id);
    else this.sql.run('UPDATE workers SET last_heartbeat_at = ?, capabilities = ? WHERE id = ?', now, capabilities, id);
  }

  /** One more consecutive failure; answers the new count. */
  recordFailure(id: string): number {
    this.noFailures.delete(id);
    return (
      this.sql.get<{ n: number }>(
        'UPDATE workers SET consecutive_failures = consecutive_failures + 1 WHERE id = ? RETURNING consecutive_failures AS n',
        id,
      )?.n ?? 0
    );
  }

  /** A worker carried over from another studio keeps its failure count and cooldown. */
  carryFailures(id: string, failures: number, cooldownUntil: number | null): void {
    this.noFailures.delete(id);
    this.sql.run('UPDATE workers SET consecutive_failures = ?, cooldown_until = ? WHERE id = ?', failures, cooldownUntil, id);
  }

  startCooldown(id: string, until: number): void {
    this.sql.run('UPDATE workers SET cooldown_until = ?, consecutive_failures = 0 WHERE id = ?', until, id);
  }

  /** Whether resetFailures would write nothing: this worker was read at 0 and has not failed since. */
  failuresKnownZero(id: string): boolean {
    return this.noFailures.has(id);
  }

  /** After a job done. Called for every result, so a worker seen at 0 is not asked again until it fails. */
  resetFailures(id: string): void {
    if (this.noFailures.has(id)) return;
    // Only "it was already 0" is remembered: a fact read, which no rollback can undo.
    if (this.sql.run('UPDATE workers SET consecutive_failures = 0 WHERE id = ? AND consecutive_failures <> 0', id) === 0) this.noFailures.add(id);
  }

  /** The token hash stays: a deleted worker that connects with its token is told worker_deleted (and stops), anyone else gets 401. */
  markDeleted(id: string, now: number): boolean {
    return this.sql.run('UPDATE workers SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL', now, id) === 1;
  }
}
