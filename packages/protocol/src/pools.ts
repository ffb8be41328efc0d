import { z } from 'zod';

/**
 * Pools: a studio's workers and jobs may be split into pools, each run by its own coordinator (on
 * Cloudflare, one Durable Object per pool). The pool is part of every worker, job and registration
 * request id (`<pool>.<id>`, e.g. `gpu.w-1a2b3c`), so a router finds it without a database look-up.
 * An id without a dot belongs to the pool `default`: every id of a studio without pools, and of the
 * original worker, keeps working unchanged.
 */
export const DEFAULT_POOL = 'default';

const POOL_PATTERN = /^[a-z0-9-]{1,32}$/;
export const POOL_NAME = z.string().regex(POOL_PATTERN, '1 to 32 lowercase letters, digits or "-"');
export type PoolName = z.infer<typeof POOL_NAME>;

/** The pool an id belongs to; undefined when its prefix is not a pool name (no such id was ever made). */
export function poolOf(id: string): string | undefined {
  const dot = id.indexOf('.');
  if (dot === -1) return DEFAULT_POOL;
  const pool = id.slice(0, dot);
  return POOL_PATTERN.test(pool) ? pool : undefined;
}

export function inPool(pool: string, id: string): boolean {
  return poolOf(id) === pool;
}

/** An id made in a pool: prefixed, except in the default pool (no pool at all, or `default`). */
export function poolId(pool: string | undefined, id: string): string {
  return pool === undefined || pool === DEFAULT_POOL ? id : `${pool}.${id}`;
}
