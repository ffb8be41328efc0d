import type { MiddlewareHandler } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Logger } from '@studio-worker/log';
import type { RateLimiter, StudioCore } from '../../core/index.ts';
import type { AssetStore } from '../assets.ts';
import { bearer, errorResponse, PROBLEMS } from '../http-errors.ts';

/** What every route module gets. */
export interface RouteDeps {
  core: StudioCore;
  assets: AssetStore;
  log: Logger;
  registerLimiter: RateLimiter;
  maxUploadBytes: number;
  now(): number;
  /** Make this request's database changes durable before its answer goes out. */
  commit(): void;
}

export type Env = { Bindings: HttpBindings };

/** Admin routes need the operator's bearer token. */
export function requireAdmin(deps: RouteDeps): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (!deps.core.admin.verify(bearer(c))) {
      return errorResponse(c, PROBLEMS.unauthorized.status, PROBLEMS.unauthorized.code, PROBLEMS.unauthorized.message);
    }
    await next();
  };
}

/** The caller's address (rate limits, registration records). */
export function sourceAddress(c: { env: HttpBindings }): string {
  return c.env.incoming.socket.remoteAddress ?? 'unknown';
}
