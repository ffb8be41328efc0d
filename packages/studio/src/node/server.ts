import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { createLogRoot, type Logger } from '@studio-worker/log';
import { createStudioCore, RateLimiter, type CoreOptions, type StudioCore } from '../core/index.ts';
import { AssetStore } from './assets.ts';
import { createApp } from './app.ts';
import { createJobFastPath } from './create-job-fast.ts';
import type { RouteDeps } from './routes/context.ts';
import { nodeCrypto } from './crypto.ts';
import { REALTIME_PATH, RealtimeHub } from './realtime.ts';
import { NodeSql } from './sqlite.ts';
import { CommittedChannel } from './committed-channel.ts';
import { WorkerSockets } from './worker-sockets.ts';
import { STUDIO_VERSION } from './version.ts';

export interface StudioOptions {
  dataDir: string;
  port: number;
  host: string;
  /** Overrides STUDIO_ADMIN_TOKEN. */
  adminToken?: string;
  core?: Partial<CoreOptions>;
  maxUploadBytes?: number;
  /** Registration requests allowed per source address per minute. */
  registerRequestsPerMinute?: number;
  log?: Logger;
}

export interface RunningStudio {
  url: string;
  port: number;
  core: StudioCore;
  /** The admin token when it was generated at this start (show it once), else undefined. */
  generatedAdminToken?: string;
  log: Logger;
  /** Stop accepting, close worker sockets (they will reconnect elsewhere or later), close the database. */
  close(): Promise<void>;
}

/** The embedded host: one port for the API, the worker sockets and the dashboard; SQLite + files under dataDir. */
export async function startStudio(options: StudioOptions): Promise<RunningStudio> {
  const log = options.log ?? createLogRoot({ app: 'studio' }).root;
  mkdirSync(options.dataDir, { recursive: true });
  const sql = new NodeSql(join(options.dataDir, 'studio.sqlite'), { groupCommit: true, backgroundCheckpoints: true });
  // A failed background checkpoint loses nothing (the WAL keeps every commit); say so once it happens.
  sql.onCheckpoint((result) => {
    if ('error' in result) log.warn({ op: 'checkpoint', err: result.error }, 'a background WAL checkpoint failed; the WAL keeps growing until one succeeds');
  });
  const sockets = new WorkerSockets(log.child({ module: 'sockets' }));
  const channel = new CommittedChannel(sockets, sql);
  sql.onCommitFailure((error) => {
    // The turn's database changes are gone but the dispatcher's memory has them: the only honest
    // move is to stop. Nothing of that turn was told to anyone; leases recover the claims.
    const dropped = channel.discard();
    log.fatal({ op: 'commit', err: error.message, droppedFrames: dropped }, 'the database refused a commit; stopping the studio');
    process.exit(1);
  });
  let core: StudioCore | undefined;
  const hub = new RealtimeHub(() => (core as StudioCore).admin);
  core = createStudioCore({ sql, clock: Date, channel, events: hub, crypto: nodeCrypto }, log, options.core);
  const admin = core.admin.init(options.adminToken ?? process.env.STUDIO_ADMIN_TOKEN);
  sockets.attach(core.dispatcher);

  const assets = new AssetStore(options.dataDir);
  const routeDeps: RouteDeps = {
    core,
    assets,
    log: log.child({ module: 'http' }),
    registerLimiter: new RateLimiter(options.registerRequestsPerMinute ?? 10, 60_000),
    maxUploadBytes: options.maxUploadBytes ?? 256 * 1024 * 1024,
    now: () => Date.now(),
    commit: () => sql.commit(),
  };
  const app = createApp(routeDeps, { version: STUDIO_VERSION });
  const viaHono = getRequestListener(app.fetch, { hostname: options.host });
  const createJob = createJobFastPath(routeDeps);
  const server = createServer((req, res) => {
    if (!createJob(req, res)) void viaHono(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (sockets.matches(path)) return sockets.handleUpgrade(request, socket, head);
    if (path === REALTIME_PATH) return hub.handleUpgrade(request, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;

  const ticker = setInterval(() => (core as StudioCore).dispatcher.tick(), 1000);
  const pruner = setInterval(() => (core as StudioCore).dispatcher.pruneLogs(), 10 * 60_000);
  log.info({ op: 'start', url, dataDir: options.dataDir, version: STUDIO_VERSION }, 'studio listening');

  let closed = false;
  return {
    url,
    port,
    core,
    generatedAdminToken: admin.generated,
    log,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(ticker);
      clearInterval(pruner);
      sockets.closeAll();
      hub.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      sockets.terminateAll();
      sql.close();
      log.info({ op: 'stop' }, 'studio stopped');
    },
  };
}
