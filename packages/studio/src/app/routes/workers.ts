import { Hono } from 'hono';
import { workerView } from '../../core/index.ts';
import { z } from 'zod';
import { errorResponse, queryInt, readJson } from '../http-errors.ts';

const CreateWorkerBody = z.object({ label: z.string().min(1).max(100), machineName: z.string().max(200).optional() });
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** The operator's view of the fleet. */
export function workerRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/workers', requireAdmin());
  app.use('/workers/:id', requireAdmin());
  app.use('/workers/:id/logs', requireAdmin());
  app.use('/workers/:id/token', requireAdmin());
  const { dispatcher } = deps.core;

  app.get('/workers', (c) => {
    const now = deps.now();
    return c.json({ workers: deps.core.stores.workers.list().map((row) => workerView(row, dispatcher.session(row.id), now)) });
  });

  /**
   * Create an approved worker directly and answer its token once: for provisioning scripts and
   * benchmarks. Machines that register themselves go through register-request and approval.
   */
  app.post('/workers', async (c) => {
    const body = await readJson(c, CreateWorkerBody);
    if (!body.ok) return body.response;
    return c.json(deps.core.registration.createApprovedWorker(body.value.label, body.value.machineName ?? body.value.label), 201);
  });

  app.get('/workers/:id', (c) => {
    const row = deps.core.stores.workers.get(c.req.param('id'));
    if (!row || row.deleted_at !== null) return errorResponse(c, 404, 'unknown_worker', `worker ${c.req.param('id')} does not exist`);
    return c.json(workerView(row, dispatcher.session(row.id), deps.now()));
  });

  app.delete('/workers/:id', (c) => {
    const id = c.req.param('id');
    if (!deps.core.stores.workers.markDeleted(id, deps.now())) return errorResponse(c, 404, 'unknown_worker', `worker ${id} does not exist`);
    dispatcher.workerDeleted(id);
    return c.json({ ok: true, workerId: id });
  });

  /** Shipped worker logs, oldest first, after a sequence number. */
  app.get('/workers/:id/logs', (c) => {
    const after = queryInt(c, 'after', { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: 0 });
    if (!after.ok) return after.response;
    const limit = queryInt(c, 'limit', { min: 1, max: 1000, fallback: 200 });
    if (!limit.ok) return limit.response;
    const rows = deps.core.stores.workerLogs.after(c.req.param('id'), after.value ?? 0, limit.value ?? 200);
    return c.json({ entries: rows, next: rows.at(-1)?.seq ?? after.value ?? 0 });
  });

  /** Mint a new token for a worker (the old one stops working); shown once. */
  app.post('/workers/:id/token', (c) => {
    const result = deps.core.registration.rotateToken(c.req.param('id'));
    return result.ok ? c.json(result.value) : errorResponse(c, result.error.status, result.error.code, result.error.message);
  });

  return app;
}
