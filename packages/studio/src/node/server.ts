import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { createLogRoot, type Logger } from '@studio-worker/log';
import { createStudioCore, RateLimiter, type CoreOptions, type StudioCore } from '../core/index.ts';
import { createApp } from '../app/app.ts';
import { DEFAULT_HOST_LIMITS, type HostLimits } from '../app/limits.ts';
import { DiskResultStore } from './results.ts';
import { nodeCrypto } from './crypto.ts';
import { nodeHost, type NodeBindings } from './host.ts';
import { RealtimeFeed } from './realtime.ts';
import { NodeSql } from './sqlite.ts';
import { CommittedChannel } from './committed-channel.ts';
import { WorkerSockets } from './worker-sockets.ts';
import { retentionDays, startHousekeeping } from './background.ts';
import { housekeepingOptions } from '../app/housekeeping.ts';
import { STUDIO_VERSION } from './version.ts';
import { upgradeHandler } from './upgrade.ts';
import { adapterErrorHandler, answerClientError, refuseMissingHost } from './unreadable-requests.ts';
import { createJobFastPath } from './create-job-fast.ts';
import { tierUpSooner } from './v8-tiering.ts';

export interface StudioOptions {
  /**
   * Results older than this many days are deleted hourly (jobs stay, marked expired); default
   * STUDIO_RETENTION_DAYS, else kept forever.
   */
  retentionDays?: number;
  dataDir: string;
  port: number;
  host: string;
  /** Overrides STUDIO_ADMIN_TOKEN. */
  adminToken?: string;
  core?: Partial<CoreOptions>;
  /** What strangers may send and for how long; see limits.ts (each has a `studio serve` flag). */
  limits?: Partial<HostLimits>;
  log?: Logger;
  /**
   * Where the sign-in page says the admin token is, when the launcher knows better than "printed at
   * the first start" (npm start keeps it in a file and prints a link only on a terminal).
   */
  signInHint?: string;
  /**
   * false: POST /graphics/api/jobs goes to the app like every other request. Only for
   * test/node/create-job-fast.test.ts, which holds the fast path to the app's answers.
   */
  createJobFastPath?: false;
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
  // Before the first request, so the job path is optimized after ~100 jobs, not ~500 (v8-tiering.ts).
  tierUpSooner();
  const retention = retentionDays(options.retentionDays);
  const log = options.log ?? createLogRoot({ app: 'studio' }).root;
  // Prompts, token hashes and results live here: for the studio's user only (issue 9).
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const sql = new NodeSql(join(options.dataDir, 'studio.sqlite'), { groupCommit: true, backgroundCheckpoints: true });
  // Checkpoints run on a worker thread (no fsync inside a commit). A failed one loses nothing (the
  // WAL keeps every commit); say so once it happens.
  sql.onCheckpoint((result) => {
    if (!('error' in result)) return;
    if (result.stopped) {
      log.error({ op: 'checkpoint', err: result.error }, 'the checkpoint thread stopped; checkpoints now run inside commits (slower answers every 1,000 WAL pages, the WAL stays bounded); restart the studio to get the thread back');
    } else {
      log.warn({ op: 'checkpoint', err: result.error }, 'a background WAL checkpoint failed; the WAL keeps growing until one succeeds');
    }
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
  const feed = new RealtimeFeed(() => (core as StudioCore).access);
  const results = new DiskResultStore(options.dataDir);
  const commit = () => sql.commit();
  const housekeeping = housekeepingOptions({ results, commit }, { retentionDays: retention, webhookRetryMs: Number(process.env.STUDIO_WEBHOOK_RETRY_MS) || undefined });
  core = createStudioCore({ sql, clock: Date, channel, events: feed.hub, crypto: nodeCrypto }, log, { ...options.core, housekeeping: { ...housekeeping, ...options.core?.housekeeping } });
  const admin = core.admin.init(options.adminToken ?? process.env.STUDIO_ADMIN_TOKEN);
  sockets.attach(core.dispatcher);

  const limits: HostLimits = { ...DEFAULT_HOST_LIMITS, ...options.limits };
  const host = nodeHost({ results, workers: sockets, feed, commit });
  const httpLog = log.child({ module: 'http' });
  const app = createApp(
    {
      core,
      host,
      log: httpLog,
      registerLimiter: new RateLimiter(limits.registerRequestsPerMinute, 60_000),
      limits,
      now: () => Date.now(),
    },
    { version: STUDIO_VERSION, signInHint: options.signInHint, retentionDays: retention },
  );
  const appListener = getRequestListener(app.fetch, { hostname: options.host, errorHandler: adapterErrorHandler(httpLog) });
  // One job created straight from node:http when it is a plain, valid create (the dispatch-latency
  // path); every other request, and every error, is the app's (create-job-fast.ts).
  const createJobFast = options.createJobFastPath === false ? () => false : createJobFastPath(core, limits, commit, appListener);
  const server = createServer(
    {
      // A connection that has not sent its whole request head in time is closed (also one that
      // never sends a byte); checked this often.
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs / 2)),
      // No cap on a whole request: a 256 MiB upload on a slow line may take long. A stalled one
      // is caught by the idle timeout instead.
      requestTimeout: 0,
      keepAliveTimeout: limits.idleTimeoutMs,
      // An HTTP/1.1 request without Host is refused by refuseMissingHost, with a message (node's own
      // refusal has no body).
      requireHostHeader: false,
    },
    (req, res) => {
      if (!refuseMissingHost(req, res) && !createJobFast(req, res)) void appListener(req, res);
    },
  );
  server.timeout = limits.idleTimeoutMs;
  server.on('clientError', answerClientError);
  // Upgrades run through the same app (its socket routes check them); the sockets port completes them.
  server.on('upgrade', upgradeHandler(httpLog, (request, env: NodeBindings) => app.fetch(request, env)));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;

  const background = startHousekeeping(core, commit, log.child({ module: 'housekeeping' }));
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
      await background.stop();
      sockets.closeAll();
      feed.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      sockets.terminateAll();
      await sql.close();
      log.info({ op: 'stop' }, 'studio stopped');
    },
  };
}
