import { Hono } from 'hono';
import { openApiDocument } from '../../core/openapi.ts';
import type { Env, RouteDeps } from './context.ts';

/** GET /openapi.json: the API described from the same zod schemas the routes validate with (built once). */
export function openApiRoutes(_deps: RouteDeps, version: string): Hono<Env> {
  const app = new Hono<Env>();
  let doc: Record<string, unknown> | undefined;
  app.get('/openapi.json', (c) => c.json((doc ??= openApiDocument(version))));
  return app;
}
