import { Hono, type Context } from 'hono';
import type { Caller } from '../../core/index.ts';
import { CreateJobRequest, CreateJobsBatch, IdempotencyKey, JobLookupRequest } from '@studio-worker/protocol';
import { errorResponse, fromError, readJson } from '../http-errors.ts';
import { callerOf } from './access.ts';
import { requireAdmin, type Env, type RouteDeps } from './context.ts';

/**
 * Submitting jobs, idempotently: `Idempotency-Key` on POST /jobs and `key` per entry of
 * POST /jobs/batch. A new job answers 201, a replay of a key answers 200 with the job it made.
 * Following many jobs at once: POST /jobs/lookup.
 */
export function submitRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/jobs', requireAdmin());
  app.use('/jobs/*', requireAdmin());
  const { jobs } = deps.core;

  app.post('/jobs', async (c) => {
    const header = c.req.header('idempotency-key');
    const key = header === undefined ? undefined : IdempotencyKey.safeParse(header);
    if (key && !key.success) return errorResponse(c, 400, 'invalid_request', 'the Idempotency-Key header must be 1 to 200 printable ASCII characters without spaces');
    const body = await readJson(c, CreateJobRequest);
    if (!body.ok) return body.response;
    const submitted = jobs.submit(owner(c), [{ request: body.value, key: key?.data }]);
    if (!submitted.ok) return fromError(c, submitted.error);
    // Durable now, so the offer leaves before the answer is built (the app's own commit after the
    // route then finds nothing to do): ~10 µs off the create → offer path.
    c.var.host.commit();
    if (submitted.value.created === 0) c.header('idempotent-replayed', 'true');
    return c.json(submitted.value.jobs[0], submitted.value.created === 0 ? 200 : 201);
  });

  /** Up to 1000 jobs in one transaction: all are created, or none (the error names the entry). */
  app.post('/jobs/batch', async (c) => {
    const body = await readJson(c, CreateJobsBatch);
    if (!body.ok) return body.response;
    const submitted = jobs.submit(
      owner(c),
      body.value.jobs.map(({ key, ...request }) => ({ request, key })),
    );
    if (!submitted.ok) return fromError(c, submitted.error);
    c.var.host.commit();
    return c.json(submitted.value, submitted.value.created === 0 ? 200 : 201);
  });

  app.post('/jobs/lookup', async (c) => {
    const body = await readJson(c, JobLookupRequest);
    if (!body.ok) return body.response;
    const caller = callerOf(c) as Caller;
    return c.json(jobs.lookup(body.value.ids, caller));
  });

  return app;
}

/** Jobs and idempotency keys are filed under the caller that made them (requireAdmin ran, so there is one). */
function owner(c: Context): string {
  return (callerOf(c) as Caller).owner;
}
