import { Hono } from 'hono';
import { JobStatus, mimeForExt } from '@studio-worker/protocol';
import { errorResponse, queryInt, respond } from '../http-errors.ts';
import { MAX_LIST_LIMIT } from '../../core/index.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/** The job queue API (admin): reading, results, cancel, retry. Submitting lives in submit.ts. */
export function jobRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/jobs', requireAdmin());
  app.use('/jobs/*', requireAdmin());
  const { jobs } = deps.core;

  app.get('/jobs', (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !JobStatus.safeParse(status).success) {
      return errorResponse(c, 400, 'invalid_request', `status must be one of ${JobStatus.options.join(', ')}`);
    }
    const before = queryInt(c, 'before', { min: 1, max: Number.MAX_SAFE_INTEGER, hint: 'the nextBefore of the previous page' });
    if (!before.ok) return before.response;
    const limit = queryInt(c, 'limit', { min: 1, max: MAX_LIST_LIMIT });
    if (!limit.ok) return limit.response;
    return c.json({
      ...jobs.list({ status: status as JobStatus | undefined, before: before.value, limit: limit.value }),
      counts: jobs.counts(),
    });
  });

  app.get('/jobs/:id', (c) => respond(c, jobs.get(c.req.param('id'))));

  app.get('/jobs/:id/result', async (c) => {
    const result = jobs.result(c.req.param('id'));
    if (!result.ok) return respond(c, result);
    if (result.value.type === 'json') return c.body(result.value.json, 200, { 'content-type': 'application/json' });
    const file = await deps.host.results.open(result.value.fileName);
    if (!file) return errorResponse(c, 500, 'result_missing', `the result file of job ${c.req.param('id')} is missing from the data directory`);
    const headers: Record<string, string> = {
      'content-type': mimeForExt(result.value.ext),
      'accept-ranges': 'bytes',
      'content-disposition': `inline; filename="${c.req.param('id')}.${result.value.ext}"`,
      'cache-control': 'private, max-age=31536000, immutable',
    };
    const range = byteRange(c.req.header('range'), file.size);
    if (range === 'unsatisfiable') {
      return new Response(null, { status: 416, headers: { ...headers, 'content-range': `bytes */${file.size}` } });
    }
    const [start, end] = range ?? [0, file.size - 1];
    headers['content-length'] = String(end + 1 - start);
    if (range) headers['content-range'] = `bytes ${start}-${end}/${file.size}`;
    const status = range ? 206 : 200;
    // HEAD: the headers only, and no file opened that nobody would read.
    if (c.req.method === 'HEAD') return new Response(null, { status, headers });
    return new Response(await file.stream(start, end), { status, headers });
  });

  app.post('/jobs/:id/cancel', (c) => respond(c, jobs.cancel(c.req.param('id'))));
  app.post('/jobs/:id/retry', (c) => respond(c, jobs.retry(c.req.param('id'))));

  return app;
}

/**
 * One `Range: bytes=a-b` (also `a-` and `-n`) against a file of `size` bytes: the inclusive byte
 * span, `unsatisfiable` (416), or undefined to send the whole file (no header, several ranges, or
 * a header we do not understand, as RFC 9110 allows).
 */
export function byteRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}
