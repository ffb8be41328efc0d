import { Hono, type Context } from 'hono';
import type { z } from 'zod';
import { ApproveRequestBody, AutoRegisterRequest, RejectRequestBody } from '@studio-worker/protocol';
import { bearer, errorResponse, readJson, respond } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** Auto-registration (unauthenticated request, secret-authenticated poll) and operator decisions. */
export function registrationRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  const admin = requireAdmin();

  app.post('/workers/register-request', async (c) => {
    const address = deps.host.clientAddress(c);
    const waitMs = deps.registerLimiter.hit(address, deps.now());
    if (waitMs > 0) {
      c.header('Retry-After', String(Math.ceil(waitMs / 1000)));
      return errorResponse(c, 429, 'rate_limited', `too many registration requests from ${address}; try again in ${Math.ceil(waitMs / 1000)} s`);
    }
    const body = await readJson(c, AutoRegisterRequest);
    if (!body.ok) return body.response;
    return respond(c, deps.core.registration.request(body.value, address, c.req.header('user-agent') ?? ''));
  });

  app.get('/workers/register-requests/:id', (c) => respond(c, deps.core.registration.poll(c.req.param('id'), bearer(c))));

  app.get('/workers/pending', admin, (c) => c.json({ requests: deps.core.registration.pending() }));

  app.post('/workers/pending/:id/approve', admin, async (c) => {
    const body = await optionalJson(c, ApproveRequestBody);
    if (!body.ok) return body.response;
    return respond(c, deps.core.registration.approve(c.req.param('id'), body.value.label));
  });

  app.post('/workers/pending/:id/reject', admin, async (c) => {
    const body = await optionalJson(c, RejectRequestBody);
    if (!body.ok) return body.response;
    return respond(c, deps.core.registration.reject(c.req.param('id'), body.value.reason));
  });

  return app;
}

/** A decision body is optional: no body at all means the defaults. */
async function optionalJson<S extends z.ZodType>(c: Context<Env>, schema: S): ReturnType<typeof readJson<S>> {
  if ((c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding')) {
    return { ok: true, value: schema.parse({}) };
  }
  return readJson(c, schema);
}
