import { Hono } from 'hono';
import { z } from 'zod';
import { importStudio } from '../../core/index.ts';
import { fromError, readJson } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/**
 * `POST /admin/import`: a `studio export` document (or one part of it, as `studio import` sends it)
 * read into this studio, all of it or none (core/transfer.ts). Moving from the embedded host to
 * the Cloudflare host is `studio export` there and `studio import` here.
 */
export function transferRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/admin/import', requireAdmin());
  app.post('/admin/import', async (c) => {
    // importStudio checks the document itself, naming each problem's path.
    const body = await readJson(c, z.unknown());
    if (!body.ok) return body.response;
    const imported = importStudio(deps.core, body.value);
    if (!imported.ok) return fromError(c, imported.error);
    deps.log.info({ op: 'import', ...imported.value }, 'studio export imported');
    return c.json(imported.value);
  });
  return app;
}
