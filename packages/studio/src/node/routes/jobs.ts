import { Hono } from 'hono';
import { CreateJobsBatch, JobStatus, mimeForExt } from '@studio-worker/protocol';
import { errorResponse, readJson, respond } from '../http-errors.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** The job queue API (admin). */
export function jobRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/jobs', requireAdmin(deps));
  app.use('/jobs/*', requireAdmin(deps));
  const { jobs } = deps.core;

  // POST /jobs (one job) is answered before hono: create-job-fast.ts.

  /** Up to 1000 jobs in one transaction: all are created, or none (the error names the entry). */
  app.post('/jobs/batch', async (c) => {
    const body = await readJson(c, CreateJobsBatch);
    if (!body.ok) return body.response;
    const created = jobs.createMany(body.value.jobs);
    deps.commit();
    return created.ok ? c.json({ jobs: created.value }, 201) : errorResponse(c, created.error.status, created.error.code, created.error.message);
  });

  app.get('/jobs', (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !JobStatus.safeParse(status).success) {
      return errorResponse(c, 400, 'invalid_request', `status must be one of ${JobStatus.options.join(', ')}`);
    }
    const before = c.req.query('before');
    const limit = c.req.query('limit');
    if ((before !== undefined && !/^\d+$/.test(before)) || (limit !== undefined && !/^\d+$/.test(limit))) {
      return errorResponse(c, 400, 'invalid_request', '"before" and "limit" must be whole numbers');
    }
    return c.json({
      ...jobs.list({ status: status as JobStatus | undefined, before: before ? Number(before) : undefined, limit: limit ? Number(limit) : undefined }),
      counts: jobs.counts(),
    });
  });

  app.get('/jobs/:id', (c) => respond(c, jobs.get(c.req.param('id'))));

  app.get('/jobs/:id/result', (c) => {
    const result = jobs.result(c.req.param('id'));
    if (!result.ok) return respond(c, result);
    if (result.value.type === 'json') return c.body(result.value.json, 200, { 'content-type': 'application/json' });
    const file = deps.assets.open(result.value.fileName);
    if (!file) return errorResponse(c, 500, 'result_missing', `the result file of job ${c.req.param('id')} is missing from the data directory`);
    return new Response(file.stream as unknown as ReadableStream, {
      status: 200,
      headers: {
        'content-type': mimeForExt(result.value.ext),
        'content-length': String(file.size),
        'content-disposition': `inline; filename="${c.req.param('id')}.${result.value.ext}"`,
        'cache-control': 'private, max-age=31536000, immutable',
      },
    });
  });

  app.post('/jobs/:id/cancel', (c) => respond(c, jobs.cancel(c.req.param('id'))));
  app.post('/jobs/:id/retry', (c) => respond(c, jobs.retry(c.req.param('id'))));

  return app;
}
