import { Hono, type Context } from 'hono';
import { API_PREFIX, SUBPROTOCOL } from '@studio-worker/protocol';
import { workerTokenMatches } from '../core/index.ts';
import { bearer, errorResponse } from './http-errors.ts';
import type { AppContext, AppEnv } from './host.ts';
import type { RouteDeps } from './routes/context.ts';

/** The worker socket: `GET /graphics/api/workers/:id/connect` (the id percent-encoded). */
const CONNECT_PATH = new RegExp(`^${API_PREFIX}/workers/([^/]+)/connect/?$`);
/** The dashboards' live feed, relative to the API prefix as core's access rules name it. */
export const REALTIME_ROUTE = '/realtime';
export const REALTIME_PATH = `${API_PREFIX}${REALTIME_ROUTE}`;
export const DASHBOARD_PROTOCOL = 'studio-dashboard';

/**
 * Every GET that asks for an upgrade (it has an `Upgrade` header) is answered here, before the
 * API's body limit and authentication: the worker socket and the dashboard feed are checked and
 * handed to the host's `sockets` port (host.ts); any other path is a 404. A refusal is a plain
 * HTTP error whose JSON body says why (`auth_failed` 401, `bad_upgrade` 400, `not_found` 404).
 * Requests without the header pass on untouched (one header read); other methods never come here.
 */
export function socketRoutes(deps: RouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { dispatcher, access } = deps.core;
  const { sockets } = deps.host;

  // GET only: a WebSocket handshake is a GET, and POST /jobs (the hot path) skips this entirely.
  app.get('*', async (c, next) => {
    const upgrade = c.req.header('upgrade');
    if (upgrade === undefined) return next();
    const path = rawPath(c);
    const connect = CONNECT_PATH.exec(path);
    if (connect) {
      /*
       * Only a valid token gets a socket: a deleted worker keeps its last token hash for exactly
       * this, so its hello can be answered with worker_deleted (it then stops for good instead of
       * re-registering in a loop).
       */
      const workerId = decodeSegment(connect[1] as string);
      if (workerId === undefined) return refuse(c, 400, 'the worker id in the path is not valid percent-encoding');
      if (!protocolsOf(c).includes(SUBPROTOCOL)) return refuse(c, 400, `request the WebSocket subprotocol ${SUBPROTOCOL}`);
      if (!workerTokenMatches(deps.core.ports.crypto, deps.core.stores.workers.get(workerId), bearer(c))) {
        deps.log.warn({ op: 'connect', workerId: workerId.slice(0, 100), remote: deps.host.clientAddress(c) }, 'refused a worker connection: bad or missing token');
        return refuse(c, 401, `worker ${workerId.slice(0, 100)} is unknown or the bearer token is wrong; re-register the worker`);
      }
      if (!isWebSocket(upgrade)) return refuse(c, 400, 'only WebSocket upgrades are served here');
      return sockets.acceptWorker(c, { workerId, protocol: SUBPROTOCOL });
    }
    if (path === REALTIME_PATH) {
      // Browsers cannot set headers on a WebSocket, so the token comes as a second subprotocol
      // `bearer.<token>` (never in the URL, which proxies log). Who may open it is core's rule for
      // `GET /realtime` (core/access.ts): the admin token and API tokens of scope admin or read.
      const protocols = protocolsOf(c);
      const token = protocols.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
      const admitted = protocols.includes(DASHBOARD_PROTOCOL) ? access.admit(token, 'GET', REALTIME_ROUTE) : undefined;
      if (!admitted || (!admitted.ok && admitted.error.status === 401)) {
        return refuse(c, 401, `open the feed with subprotocols ["${DASHBOARD_PROTOCOL}", "bearer.<token>"], the token being the admin token or a live API token of scope admin or read`);
      }
      if (!admitted.ok) return refuse(c, 403, admitted.error.message, admitted.error.code);
      if (!isWebSocket(upgrade)) return refuse(c, 400, 'only WebSocket upgrades are served here');
      return sockets.acceptFeed(c, { token: token ?? '', protocol: DASHBOARD_PROTOCOL });
    }
    return refuse(c, 404, `no WebSocket at ${path.slice(0, 200)}; workers connect to /graphics/api/workers/:id/connect`);
  });
  return app;
}

/** A refused upgrade: `code`, else one per status (401 auth_failed, 404 not_found, else bad_upgrade). */
function refuse(c: Context, status: 400 | 401 | 403 | 404, message: string, code?: string): Response {
  return errorResponse(c, status, code ?? (status === 401 ? 'auth_failed' : status === 404 ? 'not_found' : 'bad_upgrade'), message);
}

/** The path as sent, still percent-encoded (hono's `c.req.path` is decoded). */
function rawPath(c: AppContext): string {
  const url = c.req.url;
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

function protocolsOf(c: AppContext): string[] {
  return (c.req.header('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim());
}

function isWebSocket(upgrade: string): boolean {
  return upgrade.trim().toLowerCase() === 'websocket';
}

/** Percent-decoding that answers undefined for a bad escape instead of throwing a URIError. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
