import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { API_PREFIX } from '@studio-worker/protocol';
import { fileInside, KIT_DIR, KIT_URL_PREFIX, withMetaTags } from '@studio-worker/web-kit';
import { TASK_TEXT_LIMITS } from '../core/index.ts';
import { errorResponse } from './http-errors.ts';
import type { Env, RouteDeps } from './routes/context.ts';
import { jobRoutes } from './routes/jobs.ts';
import { modelRoutes } from './routes/models.ts';
import { registrationRoutes } from './routes/registration.ts';
import { isUploadRoute, uploadRoutes } from './routes/uploads.ts';
import { workerRoutes } from './routes/workers.ts';

import { authenticate, operatorRoutes } from './routes/operator.ts';

const WEB_DIR = join(import.meta.dirname, '..', 'web');
const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface AppInfo {
  /** Results older than this many days are deleted (undefined: kept forever). */
  retentionDays?: number;
  version: string;
  /** Told to the sign-in page in index.html (a meta tag): where the admin token is. */
  signInHint?: string;
}

/** The studio's HTTP surface: the API under /graphics/api, the dashboard at /. */
export function createApp(deps: RouteDeps, info: AppInfo): Hono<Env> {
  const app = new Hono<Env>();
  const api = new Hono<Env>();

  // An answer never runs ahead of the database: commit this request's changes before replying.
  app.use('*', async (c, next) => {
    c.set('maxJsonDepth', deps.limits.maxJsonDepth);
    await next();
    deps.commit();
  });

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
    if (isUploadRoute(c.req.method, c.req.path) || c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    // A declared length is checked from the header alone: hono's bodyLimit reads `c.req.raw.body`,
    // which turns the node adapter's direct body read into a web stream (about 0.1 ms a request).
    const declared = c.env.incoming.headers['content-length'];
    if (declared !== undefined && c.env.incoming.headers['transfer-encoding'] === undefined && Number(declared) <= deps.limits.maxJsonBytes) return next();
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
  app.get('/*', async (c) => {
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    const inKit = path.startsWith(KIT_URL_PREFIX);
    const file = inKit ? fileInside(KIT_DIR, path.slice(KIT_URL_PREFIX.length)) : normalize(join(WEB_DIR, path));
    if (file === null || (!inKit && !file.startsWith(WEB_DIR)) || !STATIC_TYPES[extname(file)]) {
      return errorResponse(c, 404, 'not_found', `no page ${c.req.path}`);
    }
    try {
      const bytes = await readFile(file);
      const body = path === '/index.html' && info.signInHint ? Buffer.from(withMetaTags(bytes.toString('utf8'), { 'studio-sign-in-hint': info.signInHint })) : bytes;
      return c.body(body, 200, { 'content-type': STATIC_TYPES[extname(file)] as string, 'cache-control': 'no-cache' });
    } catch {
      return errorResponse(c, 404, 'not_found', `no page ${c.req.path}`);
    }
  });

  app.onError((error, c) => {
    deps.log.error({ op: 'http', path: c.req.path, err: error.message, stack: error.stack }, 'request failed');
    return errorResponse(c, 500, 'internal_error', 'the studio failed to handle this request; see its log');
  });
  return app;
}

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}
