import { Hono } from 'hono';
import { ModelEntry, ModelUpdate } from '@studio-worker/protocol';
import { errorResponse, readJson, respond } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** The model registry (admin): what a model id means and which engine runs it. */
export function modelRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/models', requireAdmin());
  app.use('/models/*', requireAdmin());
  const { models } = deps.core;

  app.get('/models', (c) =>
    c.json({
      models: models.list().map((m) => ({ ...m, ...deps.core.dispatcher.availability(m) })),
    }),
  );
  app.get('/models/:id', (c) => {
    const model = models.get(c.req.param('id'));
    return model ? c.json(model) : errorResponse(c, 404, 'unknown_model', `model ${c.req.param('id')} does not exist`);
  });
  app.post('/models', async (c) => {
    const body = await readJson(c, ModelEntry);
    if (!body.ok) return body.response;
    return respond(c, models.create(body.value), 201);
  });
  app.patch('/models/:id', async (c) => {
    const body = await readJson(c, ModelUpdate);
    if (!body.ok) return body.response;
    return respond(c, models.update(c.req.param('id'), body.value));
  });
  app.post('/models/:id/disable', (c) => respond(c, models.update(c.req.param('id'), { enabled: false })));
  app.post('/models/:id/enable', (c) => respond(c, models.update(c.req.param('id'), { enabled: true })));
  return app;
}
