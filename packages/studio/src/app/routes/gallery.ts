import { Hono } from 'hono';
import { describeIssues, GalleryQuery } from '@studio-worker/protocol';
import { errorResponse } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** GET /gallery: finished jobs with results, newest first, filtered (admin or read). */
export function galleryRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/gallery', requireAdmin());
  app.get('/gallery', (c) => {
    const query = GalleryQuery.safeParse(c.req.query());
    if (!query.success) return errorResponse(c, 400, 'invalid_request', describeIssues(query.error));
    const q = query.data;
    return c.json(
      deps.core.gallery.page({
        model: q.model,
        gameId: q.gameId,
        asset: q.asset,
        since: q.since ? Date.parse(q.since) : undefined,
        until: q.until ? Date.parse(q.until) : undefined,
        before: q.before,
        limit: q.limit,
      }),
    );
  });
  return app;
}
