import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { JobStatus, mimeForExt } from '@studio-worker/protocol';
import { errorResponse, readJson, respond } from '../http-errors.ts';
import { MAX_LIST_LIMIT } from '../../core/index.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** The job queue API (admin): reading, results, cancel, retry. Submitting lives in submit.ts. */
export function jobRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/jobs', requireAdmin(deps));
  app.use('/jobs/*', requireAdmin(deps));
  const { jobs } = deps.core;

  app.get('/jobs', (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !JobStatus.safeParse(status).success) {
      return errorResponse(c, 400, 'invalid_request', `status must be one of ${JobStatus.options.join(', ')}`);
    }
    const before = c.req.query('before');
    const limit = c.req.query('limit');
    if (limit !== undefined && !(/^\d+$/.test(limit) && Number(limit) >= 1 && Number(limit) <= MAX_LIST_LIMIT)) {
      return errorResponse(c, 400, 'invalid_request', `limit must be a whole number from 1 to ${MAX_LIST_LIMIT} (got "${limit.slice(0, 40)}")`);
    }
    if (before !== undefined && !/^\d+$/.test(before)) {
      return errorResponse(c, 400, 'invalid_request', `before must be a whole number: the nextBefore of the previous page (got "${before.slice(0, 40)}")`);
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
    // A web stream that owns the file stream: a client that goes away cancels it (and closes the
    // file) instead of undici closing a stream it already closed, which crashed the process.
    return new Response(Readable.toWeb(file.stream) as ReadableStream, {
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
