import type { JobStatus } from '@studio-worker/protocol';
import type { SqlPort } from './ports.ts';

export interface EventRow {
  id: number;
  job_id: string;
  status: JobStatus;
  at: number;
}

export interface DeliveryRow {
  id: number;
  webhook_id: string;
  event_id: number;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_at: number;
  created_at: number;
  delivered_at: number | null;
  last_status: number | null;
  last_error: string | null;
}

export interface WebhookRow {
  id: string;
  url: string;
  events: string;
  created_at: number;
}

/**
 * Every statement about job events and the webhook outbox (`job_events`, `webhooks`,
 * `webhook_deliveries`). Events and deliveries are written by SQL triggers (schema migration 5) in
 * the transaction that changed the job; this store reads them and records each delivery's fate.
 */
export class EventStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  // ------------------------------------------------------------------ job events

  /** Events after `afterId`, oldest first. */
  eventsAfter(afterId: number, limit: number): EventRow[] {
    return this.sql.all<EventRow>('SELECT * FROM job_events WHERE id > ? ORDER BY id LIMIT ?', afterId, limit);
  }

  event(id: number): EventRow | undefined {
    return this.sql.get<EventRow>('SELECT * FROM job_events WHERE id = ?', id);
  }

  lastEventId(): number {
    return this.sql.get<{ id: number | null }>('SELECT MAX(id) AS id FROM job_events')?.id ?? 0;
  }

  /**
   * Delete events older than `cutoff`, and finished deliveries made before it; answers how many rows
   * went. The newest event stays whatever its age: event ids must keep growing for SSE clients.
   */
  pruneBefore(cutoff: number): number {
    return (
      this.sql.run('DELETE FROM job_events WHERE at < ? AND id < (SELECT MAX(id) FROM job_events)', cutoff) +
      this.sql.run(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?`, cutoff)
    );
  }

  // ------------------------------------------------------------------ endpoints

  insertWebhook(id: string, url: string, secret: string, events: string, now: number): void {
    this.sql.run('INSERT INTO webhooks (id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?)', id, url, secret, events, now);
  }

  /** A webhook not removed. */
  webhook(id: string): WebhookRow | undefined {
    return this.sql.get<WebhookRow>('SELECT * FROM webhooks WHERE id = ? AND deleted_at IS NULL', id);
  }

  /** Ids of the webhooks not removed, oldest first. */
  webhookIds(): string[] {
    return this.sql.all<{ id: string }>('SELECT id FROM webhooks WHERE deleted_at IS NULL ORDER BY created_at').map((r) => r.id);
  }

  /** Mark a webhook removed and fail what it still had to send; false when there was none to remove. */
  removeWebhook(id: string, now: number): boolean {
    if (!this.sql.run('UPDATE webhooks SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL', now, id)) return false;
    this.sql.run(`UPDATE webhook_deliveries SET status = 'failed', last_error = 'webhook removed' WHERE webhook_id = ? AND status = 'pending'`, id);
    return true;
  }

  // ------------------------------------------------------------------ deliveries

  /** Deliveries of a webhook with the event they carry, newest first, of one status or all. */
  deliveriesOf(webhookId: string, status: string | undefined, limit: number): Array<DeliveryRow & { job_id: string; event_status: JobStatus }> {
    return this.sql.all(
      `SELECT d.*, e.job_id, e.status AS event_status FROM webhook_deliveries d JOIN job_events e ON e.id = d.event_id
       WHERE d.webhook_id = ? AND (? IS NULL OR d.status = ?) ORDER BY d.id DESC LIMIT ?`,
      webhookId,
      status ?? null,
      status ?? null,
      limit,
    );
  }

  /** How many deliveries of a webhook are in each status. */
  deliveryCounts(webhookId: string): Array<{ status: string; n: number }> {
    return this.sql.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE webhook_id = ? GROUP BY status', webhookId);
  }

  /** Pending deliveries due at `now` with their endpoint, soonest first (a few at a time). */
  /** When the first pending delivery is due (undefined: none pending). */
  firstDueDelivery(): number | undefined {
    return this.sql.get<{ t: number | null }>(`SELECT MIN(next_at) AS t FROM webhook_deliveries INDEXED BY webhook_deliveries_due WHERE status = 'pending'`)?.t ?? undefined;
  }

  dueDeliveries(now: number): Array<DeliveryRow & { url: string; secret: string }> {
    return this.sql.all(
      `SELECT d.*, w.url, w.secret FROM webhook_deliveries d INDEXED BY webhook_deliveries_due JOIN webhooks w ON w.id = d.webhook_id
       WHERE d.status = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT 50`,
      now,
    );
  }

  /** Not due again before `until` (held while a request for it is in flight). */
  holdDelivery(id: number, until: number): void {
    this.sql.run('UPDATE webhook_deliveries SET next_at = ? WHERE id = ?', until, id);
  }

  markDelivered(id: number, attempts: number, now: number, httpStatus: number | null): void {
    this.sql.run(`UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, delivered_at = ?, last_status = ?, last_error = NULL WHERE id = ?`, attempts, now, httpStatus, id);
  }

  /** A failed try: pending again at `nextAt`, or failed for good. */
  markTried(id: number, d: { status: 'pending' | 'failed'; attempts: number; nextAt: number; httpStatus: number | null; error: string }): void {
    this.sql.run(
      'UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ? WHERE id = ?',
      d.status,
      d.attempts,
      d.nextAt,
      d.httpStatus,
      d.error,
      id,
    );
  }
}
