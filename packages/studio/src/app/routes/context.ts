import type { MiddlewareHandler } from 'hono';
import type { Logger } from '@studio-worker/log';
import type { RateLimiter, StudioCore } from '../../core/index.ts';
import type { AppEnv, StudioHost } from '../host.ts';
import type { HostLimits } from '../limits.ts';
import { errorResponse } from '../http-errors.ts';
import { callerOf } from './access.ts';

/** What every route module gets. */
export interface RouteDeps {
  core: StudioCore;
  /** The host's ports (host.ts): client address, result storage, sockets, files, commit. */
  host: StudioHost;
  log: Logger;
  registerLimiter: RateLimiter;
  limits: HostLimits;
  now(): number;
}

export type Env = AppEnv;

/** Admin routes need the operator's bearer token. */
export function requireAdmin(): MiddlewareHandler<Env> {
  return async (c, next) => {
    // The admin token or an API token: `authenticate` (access.ts), which runs before every API route,
    // already found the caller and checked its scope for this route; not looked up a second time.
    if (!callerOf(c)) {
      return errorResponse(c, 401, 'unauthorized', 'send the admin token or an API token as "Authorization: Bearer <token>" (the admin token was printed when the studio first started, or set STUDIO_ADMIN_TOKEN)');
    }
    await next();
  };
}
