import { Hono } from 'hono';
import { CreateTokenRequest } from '@studio-worker/protocol';
import { TokenRecord } from '../../core/index.ts';
import { readJson, respond } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/**
 * Scoped API tokens (admin only): created (shown once), listed, revoked; and adopted from another
 * pool (`PUT /admin/tokens/:id`, the Cloudflare Worker's copy of a token made in `default`).
 */
export function tokenRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/tokens', requireAdmin());
  app.use('/tokens/*', requireAdmin());
  app.use('/admin/tokens/*', requireAdmin());
  const { tokens } = deps.core;
  app.get('/tokens', (c) => c.json({ tokens: tokens.list() }));
  app.post('/tokens', async (c) => {
    const body = await readJson(c, CreateTokenRequest);
    if (!body.ok) return body.response;
    return c.json(tokens.create(body.value.name, body.value.scope), 201);
  });
  app.put('/admin/tokens/:id', async (c) => {
    const body = await readJson(c, TokenRecord);
    if (!body.ok) return body.response;
    return respond(c, tokens.adopt(c.req.param('id'), body.value));
  });
  app.post('/tokens/:id/revoke', (c) => respond(c, tokens.revoke(c.req.param('id'))));
  return app;
}
