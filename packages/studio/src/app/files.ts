import { Hono } from 'hono';
import { KIT_URL_PREFIX, plainPathSegments, withMetaTags } from '@studio-worker/web-kit/pages';
import { errorResponse } from './http-errors.ts';
import type { AppEnv, StaticFiles } from './host.ts';

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * GET of the dashboard (`/`, `/app.js`, …) and the web kit (`/kit/…`): the path is checked here
 * (a plain relative path of a known file type), the bytes come from the host (`files`). Served
 * `no-cache`: a new studio version shows on reload.
 */
export function staticFileRoutes(files: StaticFiles, signInHint: string | undefined): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/*', async (c) => {
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    const inKit = path.startsWith(KIT_URL_PREFIX);
    const segments = plainPathSegments(path.slice(inKit ? KIT_URL_PREFIX.length : 1));
    const name = segments?.at(-1) ?? '';
    const type = STATIC_TYPES[name.slice(name.lastIndexOf('.'))];
    const bytes = segments && name.includes('.') && type ? await files.read(inKit ? 'kit' : 'web', segments.join('/')) : undefined;
    if (!bytes) return errorResponse(c, 404, 'not_found', `no page ${c.req.path}`);
    const body = path === '/index.html' && signInHint ? new TextEncoder().encode(withMetaTags(new TextDecoder().decode(bytes), { 'studio-sign-in-hint': signInHint })) : bytes;
    return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'content-type': type as string, 'cache-control': 'no-cache' });
  });
  return app;
}
