import { API_PREFIX, DEFAULT_POOL } from '@studio-worker/protocol';
import { configuredPools, isPoolName, POOL_HEADER, POOL_REDIRECT_HEADER, poolFor, routeOf } from './pools.ts';
import { staticFileRoutes } from '../app/files.ts';
import { bundledFiles } from './files.ts';
import type { StudioEnv } from './types.ts';

export { StudioObject } from './studio-object.ts';

/** The dashboard and the web kit, served by the Worker itself (no object involved): the app's own route over the bundled files. */
const dashboard = staticFileRoutes(bundledFiles, undefined);

/**
 * The Worker in front of the pools: every request and socket goes to its pool's Durable Object
 * (`idFromName(pool)`), the pool read from the request itself (ids carry it: `gpu.w-…`,
 * `gpu.job-…`), never from a database. Lists without `?pool=` fan out over `STUDIO_POOLS` and
 * are merged here; model registry writes go to every pool. Authentication is the objects' (the
 * shared app's): the Worker forwards the request unchanged, adding only the pool it chose. The
 * dashboard's files it serves itself.
 */
export default {
  async fetch(request: Request, env: StudioEnv): Promise<Response> {
    const url = new URL(request.url);
    const named = url.searchParams.get('pool') ?? request.headers.get(POOL_HEADER) ?? undefined;
    if (named !== undefined && !isPoolName(named)) {
      return problem(400, 'invalid_request', `pool "${named.slice(0, 40)}" is not a pool name: 1 to 32 of a-z, 0-9 and -`);
    }
    if (!url.pathname.startsWith(`${API_PREFIX}/`) && url.pathname !== API_PREFIX) return dashboard.fetch(request);
    const route = routeOf(request.method, url.pathname, named);
    switch (route.kind) {
      case 'one':
        return toPool(env, route.pool, request);
      case 'create':
        return create(env, request, route.pool);
      case 'every':
        return toEvery(env, request);
      case 'fanout':
        return fanOut(env, request, route.list);
      case 'lookup':
        return lookup(env, request);
    }
  },
};

function stubFor(env: StudioEnv, pool: string) {
  return env.STUDIO.get(env.STUDIO.idFromName(pool));
}

/** The request, unchanged but for the pool it was routed to (the object may check it). */
function toPool(env: StudioEnv, pool: string, request: Request, body?: ArrayBuffer | string): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.set(POOL_HEADER, pool);
  // A body read here (and perhaps rewritten) gets its length anew.
  if (body !== undefined) headers.delete('content-length');
  const init: RequestInit = { method: request.method, headers, body: body ?? request.body, redirect: 'manual' };
  return stubFor(env, pool).fetch(new Request(request.url, init));
}

/**
 * A job submission (one job, or a batch whose jobs share a pool): to the pool the caller named
 * (`?pool=` or the header, written into each job's `pool` field, which is what the object's core
 * reads; or the `pool` field itself), else to the default pool. A pool's core refuses a job that
 * belongs elsewhere (its model lives in another pool) with `wrong_pool`, naming that pool in
 * `x-studio-pool-redirect`; the Worker then forwards once more, there (one hop, no lookup here).
 */
async function create(env: StudioEnv, request: Request, named: string | undefined): Promise<Response> {
  let body: ArrayBuffer | string = await request.arrayBuffer();
  let pool = named;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    // Not JSON: the object answers the error.
  }
  if (parsed !== null && typeof parsed === 'object') {
    const entries = (Array.isArray((parsed as { jobs?: unknown }).jobs) ? (parsed as { jobs: unknown[] }).jobs : [parsed]) as Array<Record<string, unknown>>;
    if (named !== undefined) {
      for (const entry of entries) if (entry !== null && typeof entry === 'object' && entry.pool === undefined) entry.pool = named;
      body = JSON.stringify(parsed);
    } else {
      const own = entries[0]?.pool;
      if (typeof own === 'string' && isPoolName(own)) pool = own;
    }
  }
  const first = await toPool(env, pool ?? DEFAULT_POOL, request, body);
  const redirect = first.headers.get(POOL_REDIRECT_HEADER);
  if (redirect === null || !isPoolName(redirect) || redirect === (pool ?? DEFAULT_POOL)) return first;
  await first.body?.cancel();
  return toPool(env, redirect, request, body);
}

/** A model registry write: every pool holds the registry, so every pool gets it; the default pool's answer is returned, unless another pool refused. */
async function toEvery(env: StudioEnv, request: Request): Promise<Response> {
  const body = await request.arrayBuffer();
  const pools = configuredPools(env.STUDIO_POOLS);
  const answers = await Promise.all(pools.map((pool) => toPool(env, pool, request, body)));
  const refused = answers.find((answer) => !answer.ok);
  const chosen = refused ?? (answers[pools.indexOf(DEFAULT_POOL)] as Response);
  for (const answer of answers) if (answer !== chosen) await answer.body?.cancel();
  return chosen;
}

interface JobsPage {
  jobs: Array<{ createdAt?: string; id: string }>;
  nextBefore?: number;
  counts?: Record<string, number>;
}

/**
 * A list over every configured pool, merged: workers and registration requests concatenated;
 * jobs the newest `limit` across pools with their counts summed (a pool's cursor means nothing in
 * another pool, so paging further names a pool: `?pool=`); health ok when every pool is.
 */
async function fanOut(env: StudioEnv, request: Request, list: 'jobs' | 'workers' | 'requests' | 'health'): Promise<Response> {
  const pools = configuredPools(env.STUDIO_POOLS);
  const answers = await Promise.all(pools.map((pool) => toPool(env, pool, request)));
  const refused = answers.find((answer) => !answer.ok);
  if (refused) {
    for (const answer of answers) if (answer !== refused) await answer.body?.cancel();
    return refused;
  }
  const bodies = (await Promise.all(answers.map((answer) => answer.json()))) as Array<Record<string, unknown>>;
  if (list === 'workers' || list === 'requests') {
    const key = list === 'workers' ? 'workers' : 'requests';
    return Response.json({ [key]: bodies.flatMap((b) => (b[key] as unknown[]) ?? []) });
  }
  if (list === 'health') {
    const first = bodies[0] as Record<string, unknown>;
    const online = bodies.reduce((sum, b) => sum + (Number(b.workersOnline) || 0), 0);
    return Response.json({ ...first, ok: bodies.every((b) => b.ok === true), workersOnline: online, pools });
  }
  const pages = bodies as unknown as JobsPage[];
  const limit = Number(new URL(request.url).searchParams.get('limit') ?? 50) || 50;
  const jobs = pages
    .flatMap((p) => p.jobs)
    .sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''))
    .slice(0, limit);
  const counts: Record<string, number> = {};
  for (const page of pages) for (const [status, n] of Object.entries(page.counts ?? {})) counts[status] = (counts[status] ?? 0) + n;
  return Response.json({ jobs, counts });
}

/**
 * `POST /jobs/lookup {ids}`: each id asked of its own pool (read from the id), the answers merged
 * in the order asked — a job another pool holds is found, not reported missing. Anything but a
 * list of ids goes to the default pool, which answers the error.
 */
async function lookup(env: StudioEnv, request: Request): Promise<Response> {
  const body = await request.arrayBuffer();
  let ids: unknown;
  try {
    ids = (JSON.parse(new TextDecoder().decode(body)) as { ids?: unknown }).ids;
  } catch {
    // The object answers the error.
  }
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) return toPool(env, DEFAULT_POOL, request, body);
  const byPool = new Map<string, string[]>();
  for (const id of ids as string[]) byPool.set(poolFor(id), [...(byPool.get(poolFor(id)) ?? []), id]);
  if (byPool.size === 1) return toPool(env, [...byPool.keys()][0] as string, request, body);
  const answers = await Promise.all([...byPool].map(([pool, part]) => toPool(env, pool, request, JSON.stringify({ ids: part }))));
  const refused = answers.find((answer) => !answer.ok);
  if (refused) {
    for (const answer of answers) if (answer !== refused) await answer.body?.cancel();
    return refused;
  }
  const pages = (await Promise.all(answers.map((answer) => answer.json()))) as Array<{ jobs: Array<{ id: string }>; missing: string[] }>;
  const found = new Map(pages.flatMap((p) => p.jobs).map((job) => [job.id, job]));
  const missing = new Set(pages.flatMap((p) => p.missing));
  return Response.json({
    jobs: (ids as string[]).filter((id) => found.has(id)).map((id) => found.get(id)),
    missing: (ids as string[]).filter((id) => missing.has(id)),
  });
}

function problem(status: number, code: string, message: string): Response {
  return Response.json({ error: code, message }, { status });
}
