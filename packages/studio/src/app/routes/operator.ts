import { Hono } from 'hono';
import type { Env, RouteDeps } from './context.ts';
import { eventRoutes } from './events.ts';
import { galleryRoutes } from './gallery.ts';
import { metricsRoutes } from './metrics.ts';
import { openApiRoutes } from './openapi.ts';
import { storageRoutes } from './storage.ts';
import { submitRoutes } from './submit.ts';
import { tokenRoutes } from './tokens.ts';
import { transferRoutes } from './transfer.ts';

export { authenticate } from './access.ts';

/**
 * The routes operators and their scripts use beyond the worker and queue basics: idempotent
 * submission, API tokens, webhooks and the event stream, OpenAPI, metrics, retention, the
 * results gallery and the import of a studio export. One module, so the app mounts them in one line.
 */
export function operatorRoutes(deps: RouteDeps, info: { version: string; retentionDays?: number }): Hono<Env> {
  const app = new Hono<Env>();
  app.route('/', submitRoutes(deps));
  app.route('/', tokenRoutes(deps));
  app.route('/', eventRoutes(deps));
  app.route('/', openApiRoutes(deps, info.version));
  app.route('/', metricsRoutes(deps));
  app.route('/', storageRoutes(deps, info.retentionDays));
  app.route('/', galleryRoutes(deps));
  app.route('/', transferRoutes(deps));
  return app;
}
