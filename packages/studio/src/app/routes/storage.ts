import { Hono } from 'hono';
import { GcRequest } from '@studio-worker/protocol';
import { collectGarbage } from '../garbage.ts';
import { errorResponse, readJson } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** Disk use of results (GET /storage) and retention run now (POST /gc). */
export function storageRoutes(deps: RouteDeps, retentionDays: number | undefined): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/storage', requireAdmin());
  app.use('/gc', requireAdmin());
  app.get('/storage', (c) => c.json({ ...deps.core.retention.storage(), retentionDays: retentionDays ?? null }));
  app.post('/gc', async (c) => {
    const body = await readJson(c, GcRequest);
    if (!body.ok) return body.response;
    const days = body.value.olderThanDays ?? retentionDays;
    if (days === undefined) return errorResponse(c, 400, 'no_retention', 'no retention is configured (STUDIO_RETENTION_DAYS when the studio starts); send {"olderThanDays": N} as JSON');
    const report = await collectGarbage(deps.core, deps.host, deps.log, days * 24 * 3600_000);
    return c.json({ olderThanDays: days, ...report, ...deps.core.retention.storage() });
  });
  return app;
}
