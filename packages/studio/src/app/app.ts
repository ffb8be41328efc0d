import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { API_PREFIX } from '@studio-worker/protocol';
import { TASK_TEXT_LIMITS } from '../core/index.ts';
import { errorResponse } from './http-errors.ts';
import type { Env, RouteDeps } from './routes/context.ts';
import { staticFileRoutes } from './files.ts';
import { jobRoutes } from './routes/jobs.ts';
import { modelRoutes } from './routes/models.ts';
import { registrationRoutes } from './routes/registration.ts';
import { isUploadRoute, uploadRoutes } from './routes/uploads.ts';
import { workerRoutes } from './routes/workers.ts';
import { socketRoutes } from './sockets.ts';

import { authenticate, operatorRoutes } from './routes/operator.ts';

export interface AppInfo {
  /** Results older than this many days are deleted (undefined: kept forever). */
  retentionDays?: number;
  version: string;
  /** Told to the sign-in page in index.html (a meta tag): where the admin token is. */
  signInHint?: string;
}

/**
 * The studio's HTTP surface, the same on every host: the API under /graphics/api, the worker and
 * dashboard WebSocket endpoints, the dashboard at /. What differs per host comes in `deps.host`
 * (host.ts). Serve it with `app.fetch(request, bindings)`.
 */
export function createApp(deps: RouteDeps, info: AppInfo): Hono<Env> {
  const app = new Hono<Env>();
  const api = new Hono<Env>();
  const { host } = deps;
  const maxJsonDepth = deps.limits.maxJsonDepth;

  // An answer never runs ahead of the database: commit this request's changes before replying.
  app.use('*', async (c, next) => {
    c.set('maxJsonDepth', maxJsonDepth);
    c.set('host', host);
    await next();
    host.commit();
  });

  // Upgrades (the worker socket, the dashboard feed) are checked here and handed to the host.
  app.route('/', socketRoutes(deps));

  // JSON bodies are small; only the multipart result upload streams (with its own limit).
  const jsonLimit = bodyLimit({
    maxSize: deps.limits.maxJsonBytes,
    onError: (ctx) =>
      errorResponse(
        ctx,
        413,
        'too_large',
        ctx.req.path.endsWith('/jobs/batch')
          ? `the request body is larger than ${formatBytes(deps.limits.maxJsonBytes)}; send fewer jobs per batch`
          : `the request body is larger than ${formatBytes(deps.limits.maxJsonBytes)}, the cap for JSON bodies; a job's prompt may be at most ${TASK_TEXT_LIMITS.promptChars} characters (LLM messages ${TASK_TEXT_LIMITS.messageChars})`,
      ),
  });
  api.use('*', async (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD' || isUploadRoute(method, c.req.path)) return next();
    // A declared length is checked from the header alone: hono's bodyLimit reads `c.req.raw.body`,
    // which on Node turns the adapter's direct body read into a web stream (about 0.1 ms a request).
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) <= deps.limits.maxJsonBytes && c.req.header('transfer-encoding') === undefined) return next();
    return jsonLimit(c, next);
  });

  // Who is calling, and may they: before every API route (routes/access.ts, core/access.ts).
  api.use('*', authenticate(deps));

  api.get('/health', (c) =>
    c.json({ ok: true, version: info.version, workersOnline: deps.core.dispatcher.sessionCount() }),
  );
  api.route('/', registrationRoutes(deps));
  api.route('/', uploadRoutes(deps));
  api.route('/', workerRoutes(deps));
  api.route('/', jobRoutes(deps));
  api.route('/', modelRoutes(deps));

  api.route('/', operatorRoutes(deps, info));
  api.all('*', (c) => errorResponse(c, 404, 'not_found', `no route ${c.req.method} ${c.req.path}; see the README for the API`));

  app.route(API_PREFIX, api);

  // The web kit (what the dashboard shares with the worker's web UI) under /kit/, the dashboard's own files at /.
  app.route('/', staticFileRoutes(host.files, info.signInHint));

  app.onError((error, c) => {
    deps.log.error({ op: 'http', path: c.req.path, err: error.message, stack: error.stack }, 'request failed');
    return errorResponse(c, 500, 'internal_error', 'the studio failed to handle this request; see its log');
  });
  return app;
}

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}
