import { API_PREFIX, DEFAULT_POOL, POOL_NAME, poolOf } from '@studio-worker/protocol';

/** A request's pool, when the caller names it: `?pool=` or this header. */
export const POOL_HEADER = 'x-studio-pool';
export { POOL_REDIRECT_HEADER } from '../app/http-errors.ts';

/** The object an id routes to: its pool (packages/protocol pools.ts); an id no pool made goes to `default`, which answers 404. */
export function poolFor(id: string): string {
  return poolOf(id) ?? DEFAULT_POOL;
}

export function isPoolName(name: string): boolean {
  return POOL_NAME.safeParse(name).success;
}

/** The pools lists fan out over (`STUDIO_POOLS`, comma-separated); `default` always among them. */
export function configuredPools(spec: string | undefined): string[] {
  const pools = new Set<string>([DEFAULT_POOL]);
  for (const name of (spec ?? '').split(',')) {
    const trimmed = name.trim();
    if (trimmed && isPoolName(trimmed)) pools.add(trimmed);
  }
  return [...pools];
}

/**
 * Where the Worker sends a request:
 * - `one`: to one pool's object (the pool is in an id of the path, or named by the caller);
 * - `fanout`: a list without `?pool=` — every configured pool, answers merged;
 * - `every`: a model registry write — every pool (each object holds its own registry copy) —
 *   and an import (`studio import`), which each pool reads for its own workers and jobs;
 * - `create`: a job submission — the named pool, else the default pool, which may redirect;
 * - `lookup`: `POST /jobs/lookup` — each id to its own pool, the answers merged.
 */
export type Route =
  | { kind: 'one'; pool: string }
  | { kind: 'fanout'; list: 'jobs' | 'workers' | 'requests' | 'health' }
  | { kind: 'every' }
  | { kind: 'create'; pool: string | undefined }
  | { kind: 'lookup' };

/** Route an API request by its method, path and named pool alone. `named` is undefined when the caller named none. */
export function routeOf(method: string, pathname: string, named: string | undefined): Route {
  const path = pathname.startsWith(API_PREFIX) ? pathname.slice(API_PREFIX.length) : pathname;
  const parts = path.split('/').filter((p) => p !== '');
  const [area, id, sub] = parts;
  const decoded = (segment: string | undefined) => {
    try {
      return decodeURIComponent(segment ?? '');
    } catch {
      return segment ?? '';
    }
  };
  if (area === 'workers') {
    if (id === 'pending' && sub !== undefined) return { kind: 'one', pool: poolFor(decoded(sub)) };
    if (id === 'register-requests' && sub !== undefined) return { kind: 'one', pool: poolFor(decoded(sub)) };
    if (id === undefined && method === 'GET' && named === undefined) return { kind: 'fanout', list: 'workers' };
    if (id === 'pending' && method === 'GET' && named === undefined) return { kind: 'fanout', list: 'requests' };
    if (id !== undefined && id !== 'pending' && id !== 'register-request' && id !== 'register-requests') return { kind: 'one', pool: poolFor(decoded(id)) };
  }
  if (area === 'jobs') {
    if (id === undefined && method === 'GET' && named === undefined) return { kind: 'fanout', list: 'jobs' };
    if ((id === undefined || id === 'batch') && method === 'POST') return { kind: 'create', pool: named };
    if (id === 'lookup' && method === 'POST' && named === undefined) return { kind: 'lookup' };
    if (id !== undefined && id !== 'batch' && id !== 'lookup') return { kind: 'one', pool: poolFor(decoded(id)) };
  }
  if (area === 'models' && method !== 'GET' && method !== 'HEAD') return { kind: 'every' };
  if (area === 'admin' && id === 'import' && method === 'POST' && named === undefined) return { kind: 'every' };
  if (area === 'health' && named === undefined) return { kind: 'fanout', list: 'health' };
  return { kind: 'one', pool: named ?? DEFAULT_POOL };
}
