import type { SqlPort } from './ports.ts';
import type { RegistrationRow } from './views.ts';

/** Every statement about the `registration_requests` table. */
export class RegistrationStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  get(id: string): RegistrationRow | undefined {
    return this.sql.get<RegistrationRow>('SELECT * FROM registration_requests WHERE id = ?', id);
  }

  /** Pending requests made after `after`, oldest first. */
  pendingAfter(after: number): RegistrationRow[] {
    return this.sql.all<RegistrationRow>("SELECT * FROM registration_requests WHERE status = 'pending' AND requested_at > ? ORDER BY requested_at", after);
  }

  /** The newest pending request of an install. */
  latestPendingOf(installId: string): RegistrationRow | undefined {
    return this.sql.get<RegistrationRow>("SELECT * FROM registration_requests WHERE install_id = ? AND status = 'pending' ORDER BY requested_at DESC LIMIT 1", installId);
  }

  /** Pending requests of other installs, from `sourceIp` or (without it) from anywhere. */
  pendingCountBesides(installId: string, sourceIp?: string): number {
    if (sourceIp === undefined) {
      return this.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM registration_requests WHERE status = 'pending' AND install_id <> ?", installId)?.n ?? 0;
    }
    return this.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM registration_requests WHERE status = 'pending' AND source_ip = ? AND install_id <> ?", sourceIp, installId)?.n ?? 0;
  }

  /** Delete the pending requests made at or before `cutoff`; answers their ids. */
  deletePendingUntil(cutoff: number): string[] {
    return this.deleteEach(this.sql.all<{ id: string }>("SELECT id FROM registration_requests WHERE status = 'pending' AND requested_at <= ?", cutoff));
  }

  /** Delete an install's pending requests; answers their ids. */
  deletePendingOf(installId: string): string[] {
    return this.deleteEach(this.sql.all<{ id: string }>("SELECT id FROM registration_requests WHERE install_id = ? AND status = 'pending'", installId));
  }

  insertPending(r: { id: string; installId: string; secretHash: string; capabilities: string; label: string | null; sourceIp: string; userAgent: string; now: number }): void {
    this.sql.run(
      `INSERT INTO registration_requests (id, install_id, secret_hash, capabilities, label, source_ip, user_agent, status, requested_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
      r.id,
      r.installId,
      r.secretHash,
      r.capabilities,
      r.label,
      r.sourceIp,
      r.userAgent,
      r.now,
    );
  }

  markApproved(id: string, workerId: string, now: number): void {
    this.sql.run("UPDATE registration_requests SET status = 'approved', decided_at = ?, worker_id = ? WHERE id = ?", now, workerId, id);
  }

  markRejected(id: string, reason: string, now: number): void {
    this.sql.run("UPDATE registration_requests SET status = 'rejected', decided_at = ?, rejection_reason = ? WHERE id = ? AND status = 'pending'", now, reason, id);
  }

  private deleteEach(rows: ReadonlyArray<{ id: string }>): string[] {
    for (const { id } of rows) this.sql.run('DELETE FROM registration_requests WHERE id = ?', id);
    return rows.map((r) => r.id);
  }
}
