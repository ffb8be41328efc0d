import { Hono } from 'hono';
import { CreateTokenRequest } from '@studio-worker/protocol';
import { readJson, respond } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** Scoped API tokens (admin only): created (shown once), listed, revoked. */
export function tokenRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/tokens', requireAdmin());
  app.use('/tokens/*', requireAdmin());
  const { tokens } = deps.core;
  app.get('/tokens', (c) => c.json({ tokens: tokens.list() }));
  app.post('/tokens', async (c) => {
    const body = await readJson(c, CreateTokenRequest);
    if (!body.ok) return body.response;
    return c.json(tokens.create(body.value.name, body.value.scope), 201);
  });
  app.post('/tokens/:id/revoke', (c) => respond(c, tokens.revoke(c.req.param('id'))));
  return app;
}
