import { API_PREFIX, CreatedToken, CreatedWebhook, DEFAULT_POOL, type TokenView, type WebhookDeliveryView, type WebhookView } from '@studio-worker/protocol';
import { tokenRecordOf } from '../core/api-tokens.ts';
import { webhookRecordOf } from '../core/webhooks.ts';
import { workerdCrypto } from './crypto.ts';
import { configuredPools, isPoolName, POOL_HEADER, POOL_REDIRECT_HEADER, poolFor, routeOf, type FanOutList } from './pools.ts';
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
      case 'copy':
        return copyToEveryPool(env, request, route.what);
      case 'everywhere':
        return toEveryHolder(env, request);
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
  const pools = configuredPools(env.STUDIO_POOLS);
  const answers = await askEveryPool(env, request, await request.arrayBuffer());
  return answerWith(answers, answers.find((answer) => !answer.ok) ?? (answers[pools.indexOf(DEFAULT_POOL)] as Response));
}

/** The request sent to every configured pool, in STUDIO_POOLS order (a body read once, the same for each). */
function askEveryPool(env: StudioEnv, request: Request, body?: ArrayBuffer): Promise<Response[]> {
  return Promise.all(configuredPools(env.STUDIO_POOLS).map((pool) => toPool(env, pool, request, body)));
}

/** `chosen`, every other answer's body released (an unread body holds its connection to the object). */
async function answerWith(answers: readonly Response[], chosen: Response): Promise<Response> {
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
async function fanOut(env: StudioEnv, request: Request, list: FanOutList): Promise<Response> {
  if (list === 'tokens' || list === 'webhooks' || list === 'deliveries') return sharedList(env, request, list);
  const pools = configuredPools(env.STUDIO_POOLS);
  const answers = await askEveryPool(env, request);
  const refused = answers.find((answer) => !answer.ok);
  if (refused) return answerWith(answers, refused);
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

/** A request of the Worker's own to one pool, with the caller's credentials (the object checks them as for any call). */
function ownRequest(env: StudioEnv, pool: string, caller: Request, method: string, path: string, body?: string): Promise<Response> {
  const headers = new Headers(caller.headers);
  headers.delete('content-length');
  headers.set(POOL_HEADER, pool);
  if (body !== undefined) headers.set('content-type', 'application/json');
  return stubFor(env, pool).fetch(new Request(new URL(path, caller.url), { method, headers, body, redirect: 'manual' }));
}

/**
 * `POST /tokens` / `POST /webhooks` without `?pool=`: made once, in `default` (which checks the
 * caller and the body), then its record — the token's hash, never the token; the webhook's id and
 * signing secret — adopted by every other configured pool (`PUT /admin/tokens|webhooks/:id`), so
 * one token works and one endpoint hears from every pool. A pool that refuses the copy undoes it
 * all: the token is revoked (the webhook removed) everywhere and the caller told which pool refused.
 */
async function copyToEveryPool(env: StudioEnv, request: Request, what: 'tokens' | 'webhooks'): Promise<Response> {
  const made = await toPool(env, DEFAULT_POOL, request, await request.arrayBuffer());
  if (made.status !== 201) return made;
  const text = await made.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Checked just below.
  }
  const parsed = (what === 'tokens' ? CreatedToken : CreatedWebhook).safeParse(json);
  if (!parsed.success) return problem(500, 'internal_error', `the default pool answered POST /${what} with an unexpected body`);
  const created = parsed.data;
  const record = what === 'tokens' ? tokenRecordOf(created as CreatedToken, workerdCrypto) : webhookRecordOf(created as CreatedWebhook);
  const id = encodeURIComponent(created.id);
  const others = configuredPools(env.STUDIO_POOLS).filter((pool) => pool !== DEFAULT_POOL);
  const copies = await Promise.all(others.map((pool) => ownRequest(env, pool, request, 'PUT', `${API_PREFIX}/admin/${what}/${id}`, JSON.stringify(record))));
  const refusedAt = copies.findIndex((copy) => !copy.ok);
  if (refusedAt < 0) {
    for (const copy of copies) await copy.body?.cancel();
    return new Response(text, { status: 201, headers: { 'content-type': 'application/json' } });
  }
  const refused = copies[refusedAt] as Response;
  const reason = `${refused.status} ${((await refused.text()) || '').slice(0, 300)}`;
  for (const copy of copies) if (copy !== refused) await copy.body?.cancel();
  const [method, path] = what === 'tokens' ? ['POST', `${API_PREFIX}/tokens/${id}/revoke`] : ['DELETE', `${API_PREFIX}/webhooks/${id}`];
  const undone = await Promise.all(configuredPools(env.STUDIO_POOLS).map((pool) => ownRequest(env, pool, request, method, path)));
  for (const answer of undone) await answer.body?.cancel();
  const thing = what === 'tokens' ? `token ${created.id} was revoked` : `webhook ${created.id} was removed`;
  return problem(502, 'pool_copy_failed', `pool "${others[refusedAt]}" refused the copy (${reason}); the ${thing} in every pool — fix that pool (or drop it from STUDIO_POOLS) and create it again`);
}

/**
 * Revoking a token, removing a webhook: in every pool (each holds a copy). Answered by the first
 * pool that had it (`default` first); a pool that does not know it (made there before copies, or
 * with `?pool=` elsewhere) is skipped; any other refusal is the answer, as that pool still has it.
 */
async function toEveryHolder(env: StudioEnv, request: Request): Promise<Response> {
  const answers = await askEveryPool(env, request, await request.arrayBuffer());
  return answerWith(answers, answers.find((a) => !a.ok && a.status !== 404) ?? answers.find((a) => a.ok) ?? (answers[0] as Response));
}

/**
 * Tokens, webhooks and one webhook's deliveries over every pool. A token or webhook is listed once
 * (each pool holds a copy): a token's last use is the latest in any pool and revoked if revoked
 * anywhere; a webhook's delivery counts are summed. Deliveries are each pool's own (the ones it
 * made for its jobs), merged newest first; a pool that does not know the webhook adds none.
 */
async function sharedList(env: StudioEnv, request: Request, list: 'tokens' | 'webhooks' | 'deliveries'): Promise<Response> {
  const answers = await askEveryPool(env, request);
  const refused = answers.find((a) => !a.ok && !(list === 'deliveries' && a.status === 404));
  const found = answers.filter((a) => a.ok);
  if (refused || found.length === 0) return answerWith(answers, refused ?? (answers[0] as Response));
  for (const answer of answers) if (!answer.ok) await answer.body?.cancel();
  const bodies = (await Promise.all(found.map((a) => a.json()))) as unknown[];
  if (list === 'deliveries') {
    const limit = Math.min(Math.max(Number(new URL(request.url).searchParams.get('limit') ?? 100) || 100, 1), 1000);
    const all = (bodies as WebhookDeliveryView[][]).flat().sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id);
    return Response.json(all.slice(0, limit));
  }
  if (list === 'tokens') {
    const merged = new Map<string, TokenView>();
    for (const token of (bodies as Array<{ tokens: TokenView[] }>).flatMap((b) => b.tokens)) {
      const seen = merged.get(token.id);
      if (!seen) merged.set(token.id, token);
      else merged.set(token.id, { ...seen, lastUsedAt: latest(seen.lastUsedAt, token.lastUsedAt), revokedAt: seen.revokedAt ?? token.revokedAt });
    }
    return Response.json({ tokens: [...merged.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)) });
  }
  const merged = new Map<string, WebhookView>();
  for (const hook of (bodies as Array<{ webhooks: WebhookView[] }>).flatMap((b) => b.webhooks)) {
    const seen = merged.get(hook.id);
    merged.set(hook.id, seen ? { ...seen, pending: seen.pending + hook.pending, delivered: seen.delivered + hook.delivered, failed: seen.failed + hook.failed } : hook);
  }
  return Response.json({ webhooks: [...merged.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt)) });
}

function latest(a: string | undefined, b: string | undefined): string | undefined {
  return a === undefined ? b : b === undefined ? a : a > b ? a : b;
}

function problem(status: number, code: string, message: string): Response {
  return Response.json({ error: code, message }, { status });
}
