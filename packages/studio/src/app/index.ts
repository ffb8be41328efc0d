/**
 * The studio app, the same on every host (see host.ts for what a host provides and
 * docs/architecture.md for where things go). Imported by the Node host (src/node) and the
 * Cloudflare host (src/cloudflare); imports neither.
 */
export { createApp, type AppInfo } from './app.ts';
export type { AppContext, AppEnv, AppVariables, ResultStore, SocketAcceptor, StagedResult, StaticFiles, StoredResult, StudioHost } from './host.ts';
export type { RouteDeps } from './routes/context.ts';
export { DEFAULT_HOST_LIMITS, type HostLimits } from './limits.ts';
export { FeedHub, type FeedSocket } from './feed.ts';
export { DASHBOARD_PROTOCOL, REALTIME_PATH } from './sockets.ts';
export { collectGarbage } from './garbage.ts';
export { housekeepingOptions } from './housekeeping.ts';
