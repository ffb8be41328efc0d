import type { CreatedWebhook, JobEvent, JobStatus, WebhookDeliveryView, WebhookView } from '@studio-worker/protocol';
import type { DeliveryRow, EventRow } from './event-store.ts';
import type { Ports } from './ports.ts';
import { fail, iso, isoOrUndefined, ok, type Result } from './result.ts';
import type { Stores } from './stores.ts';
import { jobView } from './views.ts';

export interface DeliveryPolicy {
  /** First retry delay; doubles per failed try up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long after the event a delivery is still tried; then it is `failed`. */
  windowMs: number;
  /** Per-try time limit (also how long a picked delivery is held against a second sender). */
  timeoutMs: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = { baseDelayMs: 10_000, maxDelayMs: 3_600_000, windowMs: 24 * 3_600_000, timeoutMs: 10_000 };

const TERMINAL = new Set<JobStatus>(['done', 'failed', 'cancelled']);

/**
 * Job events for integrations. Events and the webhook outbox are written by SQL triggers (schema
 * migration 5) in the transaction that changed the job; this class reads them, manages endpoints,
 * and delivers: signed (Standard Webhooks: HMAC-SHA256 over "id.timestamp.body"), retried with
 * backoff for a day, at least once. Web APIs only (fetch, crypto.subtle), so both hosts run it.
 */
export class Webhooks {
  private readonly ports: Ports;
  private readonly stores: Stores;

  constructor(ports: Ports, stores: Stores) {
    this.ports = ports;
    this.stores = stores;
  }

  create(url: string, events: readonly JobStatus[]): Result<CreatedWebhook> {
    const allowed = checkUrl(url);
    if (!allowed.ok) return allowed;
    const id = `wh-${this.ports.crypto.randomHex(6)}`;
    const secret = `whsec_${hexToBase64(this.ports.crypto.randomHex(24))}`;
    const now = this.ports.clock.now();
    this.stores.events.insertWebhook(id, url, secret, JSON.stringify(events), now);
    return ok({ ...(this.view(id) as WebhookView), secret });
  }

  list(): WebhookView[] {
    return this.stores.events.webhookIds().map((id) => this.view(id) as WebhookView);
  }

  remove(id: string): Result<{ ok: true; id: string }> {
    // Nothing more goes out to a removed endpoint: its pending deliveries fail with it.
    if (!this.stores.events.removeWebhook(id, this.ports.clock.now())) return fail(404, 'unknown_webhook', `webhook ${id} does not exist`);
    return ok({ ok: true, id });
  }

  deliveries(webhookId: string, filter: { status?: string; limit?: number }): Result<WebhookDeliveryView[]> {
    if (!this.view(webhookId)) return fail(404, 'unknown_webhook', `webhook ${webhookId} does not exist`);
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const rows = this.stores.events.deliveriesOf(webhookId, filter.status, limit);
    return ok(
      rows.map((r) => ({
        id: r.id,
        eventId: `evt_${r.event_id}`,
        jobId: r.job_id,
        type: `job.${r.event_status}`,
        status: r.status,
        attempts: r.attempts,
        nextAt: r.status === 'pending' ? iso(r.next_at) : undefined,
        createdAt: iso(r.created_at),
        deliveredAt: isoOrUndefined(r.delivered_at),
        lastStatus: r.last_status ?? undefined,
        lastError: r.last_error ?? undefined,
      })),
    );
  }

  /** Events after `afterId` (the SSE stream's Last-Event-ID), oldest first. */
  eventsAfter(afterId: number, limit = 500): Array<{ seq: number; event: JobEvent }> {
    return this.stores.events.eventsAfter(afterId, limit).map((row) => ({ seq: row.id, event: this.event(row) }));
  }

  lastEventId(): number {
    return this.stores.events.lastEventId();
  }

  /** Send every due delivery (a few at a time); answers how many were tried. */
  async deliverDue(policy: DeliveryPolicy = DEFAULT_DELIVERY_POLICY, fetchImpl: typeof fetch = fetch): Promise<number> {
    const now = this.ports.clock.now();
    const due = this.stores.events.dueDeliveries(now);
    if (due.length === 0) return 0;
    // Held against a second sender (another tick, a restarted host) while the request is in flight.
    for (const d of due) this.stores.events.holdDelivery(d.id, now + policy.timeoutMs * 2);
    await Promise.all(due.map((d) => this.deliverOne(d, policy, fetchImpl)));
    return due.length;
  }

  private async deliverOne(d: DeliveryRow & { url: string; secret: string }, policy: DeliveryPolicy, fetchImpl: typeof fetch): Promise<void> {
    const row = this.stores.events.event(d.event_id);
    let outcome: { status?: number; error?: string };
    if (!row) outcome = { error: 'the event no longer exists' };
    else {
      const event = this.event(row);
      const body = JSON.stringify(event);
      const timestamp = String(Math.floor(this.ports.clock.now() / 1000));
      try {
        const res = await fetchImpl(d.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': event.id,
            'webhook-timestamp': timestamp,
            'webhook-signature': await signWebhook(d.secret, event.id, timestamp, body),
            'user-agent': 'studio-webhooks',
          },
          body,
          signal: AbortSignal.timeout(policy.timeoutMs),
          redirect: 'manual',
        });
        await res.body?.cancel();
        outcome = res.ok ? { status: res.status } : { status: res.status, error: `the endpoint answered ${res.status}` };
      } catch (error) {
        outcome = { error: (error as Error).message };
      }
    }
    const now = this.ports.clock.now();
    const attempts = d.attempts + 1;
    if (outcome.error === undefined) {
      this.stores.events.markDelivered(d.id, attempts, now, outcome.status ?? null);
      return;
    }
    const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempts - 1)) * (0.75 + Math.random() / 2);
    const givesUp = now + delay > d.created_at + policy.windowMs;
    this.stores.events.markTried(d.id, { status: givesUp ? 'failed' : 'pending', attempts, nextAt: Math.round(now + delay), httpStatus: outcome.status ?? null, error: outcome.error });
  }

  private event(row: EventRow): JobEvent {
    const job = TERMINAL.has(row.status) ? this.stores.jobs.get(row.job_id) : undefined;
    return { id: `evt_${row.id}`, type: `job.${row.status}`, jobId: row.job_id, status: row.status, at: iso(row.at), job: job ? jobView(job) : undefined };
  }

  private view(id: string): WebhookView | undefined {
    const w = this.stores.events.webhook(id);
    if (!w) return undefined;
    const counts: Record<string, number> = { pending: 0, delivered: 0, failed: 0 };
    for (const c of this.stores.events.deliveryCounts(id)) counts[c.status] = c.n;
    return { id: w.id, url: w.url, events: JSON.parse(w.events) as WebhookView['events'], createdAt: iso(w.created_at), pending: counts.pending ?? 0, delivered: counts.delivered ?? 0, failed: counts.failed ?? 0 };
  }
}

/** https anywhere; plain http only to this machine (a local receiver). */
function checkUrl(url: string): Result<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail(400, 'invalid_request', 'url is not a valid URL');
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(parsed.hostname);
  if (parsed.protocol === 'https:' || (parsed.protocol === 'http:' && loopback)) return ok(undefined);
  return fail(400, 'invalid_request', 'a webhook url must be https (plain http is allowed only to 127.0.0.1, ::1 or localhost)');
}

/**
 * The Standard Webhooks signature (standardwebhooks.com): "v1," + base64 HMAC-SHA256 of
 * "<id>.<timestamp>.<body>", keyed with the base64 bytes after "whsec_".
 */
export async function signWebhook(secret: string, id: string, timestamp: string, body: string): Promise<string> {
  const keyBytes = Uint8Array.from(atob(secret.replace(/^whsec_/, '')), (ch) => ch.charCodeAt(0));
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${timestamp}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

function hexToBase64(hex: string): string {
  return btoa(String.fromCharCode(...(hex.match(/../g) ?? []).map((b) => parseInt(b, 16))));
}
