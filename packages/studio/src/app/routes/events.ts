import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { CreateWebhookRequest } from '@studio-worker/protocol';
import { WebhookRecord } from '../../core/index.ts';
import { errorResponse, readJson, respond } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

const POLL_MS = 250;
const KEEPALIVE_MS = 15_000;

/**
 * Job events for integrations: webhook endpoints and their deliveries (admin; an endpoint made in
 * another pool is adopted with `PUT /admin/webhooks/:id`), and the
 * server-sent events stream GET /events (admin or read), resumable with Last-Event-ID.
 */
export function eventRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  for (const path of ['/webhooks', '/webhooks/*', '/admin/webhooks/*', '/events']) app.use(path, requireAdmin());
  const { webhooks } = deps.core;

  app.get('/webhooks', (c) => c.json({ webhooks: webhooks.list() }));
  app.post('/webhooks', async (c) => {
    const body = await readJson(c, CreateWebhookRequest);
    if (!body.ok) return body.response;
    return respond(c, webhooks.create(body.value.url, body.value.events), 201);
  });
  // Another pool's webhook, copied in by the Cloudflare Worker (same id and secret).
  app.put('/admin/webhooks/:id', async (c) => {
    const body = await readJson(c, WebhookRecord);
    if (!body.ok) return body.response;
    return respond(c, webhooks.adopt(c.req.param('id'), body.value));
  });
  app.delete('/webhooks/:id', (c) => respond(c, webhooks.remove(c.req.param('id'))));
  app.get('/webhooks/:id/deliveries', (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !['pending', 'delivered', 'failed'].includes(status)) {
      return errorResponse(c, 400, 'invalid_request', 'status must be pending, delivered or failed');
    }
    return respond(c, webhooks.deliveries(c.req.param('id'), { status, limit: Number(c.req.query('limit') ?? 100) || 100 }));
  });

  /**
   * `event: job`, `id: <n>`, `data: <JobEvent JSON>` for every job status change. A client that
   * reconnects with Last-Event-ID (or ?after=<n>) gets every event after that one; a new client
   * starts at the newest event (?after=0 replays what is kept).
   */
  app.get('/events', (c) => {
    const from = c.req.header('last-event-id') ?? c.req.query('after');
    if (from !== undefined && !/^\d+$/.test(from)) return errorResponse(c, 400, 'invalid_request', 'Last-Event-ID and "after" must be event numbers');
    let last = from === undefined ? webhooks.lastEventId() : Number(from);
    return streamSSE(c, async (stream) => {
      let quietSince = Date.now();
      while (!stream.aborted && !stream.closed) {
        const batch = webhooks.eventsAfter(last);
        for (const { seq, event } of batch) {
          await stream.writeSSE({ id: String(seq), event: 'job', data: JSON.stringify(event) });
          last = seq;
        }
        if (batch.length > 0) quietSince = Date.now();
        else if (Date.now() - quietSince > KEEPALIVE_MS) {
          await stream.write(': keep-alive\n\n');
          quietSince = Date.now();
        }
        if (batch.length < 500) await stream.sleep(POLL_MS);
      }
    });
  });
  return app;
}
