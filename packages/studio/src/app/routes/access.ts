import type { Context, MiddlewareHandler } from 'hono';
import { API_PREFIX } from '@studio-worker/protocol';
import type { Caller } from '../../core/index.ts';
import { bearer, fromError } from '../http-errors.ts';
import type { Env, RouteDeps } from './context.ts';

const callers = new WeakMap<Request, Caller>();

/** The authenticated caller of this request (admin or API token), if any. */
export function callerOf(c: Context): Caller | undefined {
  return callers.get(c.req.raw);
}

/**
 * Runs before every API route: a bearer that is the admin token or a live API token makes this
 * request's caller, whose scope is checked here (so a route never sees a request its caller may not
 * make). Any other bearer (a worker's token, none) passes untouched: the route's own check answers.
 */
export function authenticate(deps: RouteDeps): MiddlewareHandler<Env> {
  return async (c, next) => {
    const caller = deps.core.access.authenticate(bearer(c));
    if (caller) {
      const allowed = deps.core.access.authorize(caller, c.req.method, c.req.path.slice(API_PREFIX.length) || '/');
      if (!allowed.ok) return fromError(c, allowed.error);
      callers.set(c.req.raw, caller);
    }
    await next();
  };
}
