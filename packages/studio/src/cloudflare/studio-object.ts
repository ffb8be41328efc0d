import type { Hono } from 'hono';
import type { Logger } from '@studio-worker/log';
import { createApp, DEFAULT_HOST_LIMITS, FeedHub, housekeepingOptions, type AppEnv, type FeedSocket, type StudioHost } from '../app/index.ts';
import { createStudioCore, RateLimiter, type StudioCore, type WorkerChannel } from '../core/index.ts';
import { bundledFiles } from './files.ts';
import { DurableSql } from './sql.ts';
import { workerdCrypto } from './crypto.ts';
import { workerdLogger } from './logger.ts';
import { R2Results } from './r2-results.ts';
import type { CfWebSocket, DurableObjectState, StudioEnv, WebSocketPairConstructor } from './types.ts';

declare const WebSocketPair: WebSocketPairConstructor;

/** Tags on the object's hibernatable sockets: a worker session, a dashboard feed. */
const WORKER_TAG = 'worker';
const FEED_TAG = 'feed';
const OPEN = 1;

/** What a socket carries across hibernation (serializeAttachment, at most 2,048 bytes). */
type Attachment =
  | {
      kind: 'worker';
      connId: string;
      workerId: string;
      /** Dispatcher.sessionSnapshot after the last message on this socket (absent before hello). */
      session?: unknown;
    }
  | {
      kind: 'feed';
      /**
       * The feed's bearer token: the hub checks it again before each batch (a revoked token's feed
       * is closed), so it must outlive an eviction. Attachments stay inside the runtime (never
       * logged, never sent); the database keeps only its hash.
       */
      token: string;
    };

/**
 * One pool's studio: a Durable Object with SQLite storage running the same core, schema and
 * migrations and the same app (every route) as the embedded host. Worker sockets and dashboard
 * feeds are hibernatable (`ctx.acceptWebSocket`): the object may be evicted from memory while they
 * stay open, and its constructor runs again on the next event, so what the dispatcher keeps in
 * memory comes back from SQL and from each socket's attachment (kept current after every
 * message). Periodic work (lease sweep, retry backoff, webhooks, log pruning) runs from the
 * object's alarm, set to when the core next needs to wake.
 */
export class StudioObject implements WorkerChannel {
  private readonly ctx: DurableObjectState;
  private readonly log: Logger;
  private readonly core: StudioCore;
  private readonly feed: FeedHub;
  private readonly app: Hono<AppEnv>;
  /** The most bytes of an unread request body read and dropped after its answer (see fetch). */
  private readonly drainLimit: number;
  /** Worker sockets by connection id (rebuilt from the attachments after an eviction). */
  private readonly sockets = new Map<string, CfWebSocket>();
  /** Each feed socket's view for the hub (workerd's WebSocket has no bufferedAmount). */
  private readonly feeds = new Map<CfWebSocket, FeedSocket>();
  /** The alarm as last read or set (undefined: not read since the object started). */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: StudioEnv) {
    this.ctx = ctx;
    // idFromName(pool): the object knows its pool from its own id.
    const pool = ctx.id.name ?? 'default';
    this.log = workerdLogger(env.STUDIO_LOG_LEVEL, { app: 'studio', host: 'cloudflare', pool });
    this.feed = new FeedHub(() => this.core.access);
    const results = new R2Results(env.RESULTS, workerdCrypto);
    // An object cannot refuse to start (every request would fail), so a bad value is named in an
    // error line, once per start, and what applies instead is said (the Node studio exits on one).
    const setting = (name: keyof StudioEnv & `STUDIO_${string}`, instead: string): number | undefined => {
      const raw = env[name];
      const value = positive(raw);
      if (value === undefined && raw !== undefined && raw !== '') {
        this.log.error({ op: 'start', setting: name }, `${name} must be a positive number (got "${String(raw)}"); it is ignored and ${instead}`);
      }
      return value;
    };
    const retentionDays = setting('STUDIO_RETENTION_DAYS', 'results are kept forever');
    const leaseSeconds = setting('STUDIO_LEASE_SECONDS', 'the default lease applies');
    const helloSeconds = setting('STUDIO_HELLO_TIMEOUT_SECONDS', 'the default hello timeout applies');
    const maxAttempts = setting('STUDIO_MAX_ATTEMPTS', 'the default number of attempts applies');
    const webhookRetryMs = setting('STUDIO_WEBHOOK_RETRY_MS', 'the default webhook retry delay applies');
    this.core = createStudioCore(
      { sql: new DurableSql(ctx.storage), clock: Date, channel: this, events: this.feed, crypto: workerdCrypto },
      this.log,
      {
        allowLoopbackHttpModels: env.STUDIO_ALLOW_LOOPBACK_MODELS === '1',
        pool,
        ...(leaseSeconds === undefined ? {} : { leaseMs: Math.round(leaseSeconds * 1000) }),
        ...(helloSeconds === undefined ? {} : { helloTimeoutMs: Math.round(helloSeconds * 1000) }),
        ...(maxAttempts === undefined ? {} : { defaultMaxAttempts: Math.round(maxAttempts) }),
        // The output gate holds the R2 deletes of a retention pass (outgoing I/O) until the SQL that
        // marked the jobs expired is durable, as the core asks of removeFiles; commit is a no-op here.
        housekeeping: housekeepingOptions({ results, commit() {} }, { retentionDays, webhookRetryMs }),
      },
    );
    // Only the secret's hash is kept (in memory); nothing is generated here: a token made inside an
    // object could be shown to no one.
    if (env.STUDIO_ADMIN_TOKEN) this.core.admin.init(env.STUDIO_ADMIN_TOKEN);
    else this.log.error({ op: 'start' }, 'STUDIO_ADMIN_TOKEN is not set: admin routes refuse every caller; set it with `wrangler secret put STUDIO_ADMIN_TOKEN`');
    const host: StudioHost = {
      clientAddress: (c) => c.req.header('cf-connecting-ip') ?? 'unknown',
      results,
      sockets: {
        acceptWorker: (_c, accept) => this.acceptWorker(accept.workerId, accept.protocol),
        acceptFeed: (_c, accept) => this.acceptFeed(accept.token, accept.protocol),
      },
      files: bundledFiles,
      // The output gate holds every answer until the object's writes are durable.
      commit() {},
    };
    const limits = DEFAULT_HOST_LIMITS;
    this.drainLimit = limits.maxUploadBytes + 64 * 1024;
    this.app = createApp(
      { core: this.core, host, log: this.log.child({ module: 'http' }), registerLimiter: new RateLimiter(limits.registerRequestsPerMinute, 60_000), limits, now: () => Date.now() },
      { version: env.STUDIO_VERSION ?? '0.1.0', retentionDays },
    );
    this.restoreSockets();
  }

  /** After an eviction: every open socket back — worker sessions into the dispatcher, feeds into the hub. */
  private restoreSockets(): void {
    let restored = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as Attachment | null;
      if (attachment?.kind === 'feed') {
        this.addFeed(ws, attachment.token);
        continue;
      }
      if (attachment?.kind !== 'worker') continue;
      this.sockets.set(attachment.connId, ws);
      if (attachment.session === undefined) {
        // It never said hello: a fresh session, as if it had just connected (its next frame is the greeting).
        this.core.dispatcher.connectionOpened(attachment.connId, attachment.workerId);
      } else if (this.core.dispatcher.restoreSession(attachment.session)) {
        restored++;
      }
      // A session the core would not restore was closed by it (worker deleted meanwhile).
    }
    if (restored > 0) this.log.info({ op: 'hibernation', restored }, 'sessions restored after the object was evicted');
  }

  async fetch(request: Request): Promise<Response> {
    try {
      const response = await this.app.fetch(request);
      // A request refused before its body was read (a 403, a stale upload's 409): workerd would
      // close the client's kept-alive connection after the answer without saying `Connection:
      // close`, and the client's next request on it fails (ECONNRESET). Read the rest and drop it,
      // as Node's HTTP server does by itself — bounded: past the upload cap the connection may go.
      if (request.body && !request.bodyUsed) await drain(request.body, this.drainLimit);
      return response;
    } finally {
      this.keepChangedAttachments();
      await this.scheduleWake();
    }
  }

  // ------------------------------------------------------------------ sockets

  /** A worker socket the app authenticated: hibernatable, its connection id in the attachment. */
  private acceptWorker(workerId: string, protocol: string): Response {
    const pair = new WebSocketPair();
    const server = pair[1];
    const connId = workerdCrypto.randomHex(8);
    this.ctx.acceptWebSocket(server, [WORKER_TAG]);
    server.serializeAttachment({ kind: 'worker', connId, workerId } satisfies Attachment);
    this.sockets.set(connId, server);
    this.core.dispatcher.connectionOpened(connId, workerId);
    return upgraded(pair[0], protocol);
  }

  private acceptFeed(token: string, protocol: string): Response {
    const pair = new WebSocketPair();
    const server = pair[1];
    this.ctx.acceptWebSocket(server, [FEED_TAG]);
    server.serializeAttachment({ kind: 'feed', token } satisfies Attachment);
    this.addFeed(server, token);
    return upgraded(pair[0], protocol);
  }

  private addFeed(ws: CfWebSocket, token: string): void {
    const socket: FeedSocket = {
      get readyState() {
        return ws.readyState;
      },
      bufferedAmount: 0,
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
    };
    this.feeds.set(ws, socket);
    this.feed.add(socket, token);
  }

  async webSocketMessage(ws: CfWebSocket, message: string | ArrayBuffer): Promise<void> {
    const attachment = ws.deserializeAttachment() as Attachment | null;
    if (attachment?.kind !== 'worker') return; // dashboards only listen
    if (typeof message === 'string') this.core.dispatcher.handleText(attachment.connId, message);
    else this.core.dispatcher.handleBinary(attachment.connId);
    this.keepAttachment(ws, attachment);
    this.keepChangedAttachments();
    await this.scheduleWake();
  }

  /**
   * Sessions a sweep, a take-back or a cancel changed without a message of their own (a released
   * claim lives only in memory and in the snapshot): their attachments too, so an eviction before
   * their next message does not free a slot the worker still uses.
   */
  private keepChangedAttachments(): void {
    for (const connId of this.core.dispatcher.takeChangedSessions()) {
      const ws = this.sockets.get(connId);
      const attachment = ws?.deserializeAttachment() as Attachment | null | undefined;
      if (ws && attachment?.kind === 'worker') this.keepAttachment(ws, attachment);
    }
  }

  /** The session's in-memory part beside its socket, so an eviction after this message loses nothing. */
  private keepAttachment(ws: CfWebSocket, attachment: Attachment & { kind: 'worker' }): void {
    const session = this.core.dispatcher.sessionSnapshot(attachment.connId);
    if (session === undefined) return;
    try {
      ws.serializeAttachment({ ...attachment, session } satisfies Attachment);
    } catch (error) {
      // Over 2,048 bytes (the core caps its lists to stay under): the previous snapshot stays.
      this.log.warn({ op: 'hibernation', connId: attachment.connId, err: (error as Error).message }, 'a session snapshot did not fit the socket attachment');
    }
  }

  async webSocketClose(ws: CfWebSocket, code: number, reason: string): Promise<void> {
    this.socketGone(ws, code, reason);
    try {
      // Complete the closing handshake (1005/1006 are not codes one may send).
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
    await this.scheduleWake();
  }

  async webSocketError(ws: CfWebSocket, error: unknown): Promise<void> {
    this.log.warn({ op: 'connect', err: (error as Error)?.message }, 'socket error');
    this.socketGone(ws, 1006, 'socket error');
    await this.scheduleWake();
  }

  private socketGone(ws: CfWebSocket, code: number, reason: string): void {
    const attachment = ws.deserializeAttachment() as Attachment | null;
    if (attachment?.kind === 'worker') {
      if (this.sockets.get(attachment.connId) === ws) this.sockets.delete(attachment.connId);
      this.core.dispatcher.connectionClosed(attachment.connId, code, reason);
      return;
    }
    const feed = this.feeds.get(ws);
    if (feed) {
      this.feeds.delete(ws);
      this.feed.remove(feed);
    }
  }

  // ------------------------------------------------------------------ WorkerChannel

  send(connId: string, text: string): void {
    const ws = this.sockets.get(connId);
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(text);
    } catch {
      // Closed meanwhile: sending on a closed connection is a no-op (the port's contract).
    }
  }

  /**
   * Close a worker's socket. The dispatcher calls this while handling a message (a duplicate
   * worker's hello closes the older socket, a deleted worker's hello its own), never from
   * `fetch()`: a close sent from `fetch()` reaches the client about 10 s late under workerd.
   */
  close(connId: string, code: number, reason: string): void {
    const ws = this.sockets.get(connId);
    if (!ws) return;
    this.sockets.delete(connId);
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  // ------------------------------------------------------------------ alarms

  /** The core's periodic work that is due now. */
  async alarm(): Promise<void> {
    this.alarmAt = null;
    await this.core.housekeeping.runDue(Date.now());
    this.keepChangedAttachments();
    await this.scheduleWake();
  }

  /**
   * Keep the alarm at the core's next wake-up. Asked after every request and message, because a
   * new claim or webhook may bring it forward; the alarm is written only when it must move earlier
   * (or be set at all), so a steady stream of heartbeats costs no storage write.
   */
  private async scheduleWake(): Promise<void> {
    const next = this.core.housekeeping.nextWakeAt(Date.now());
    if (next === undefined) return;
    this.alarmAt ??= await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= next) return;
    this.alarmAt = next;
    await this.ctx.storage.setAlarm(next);
  }
}

/** A positive number from a Worker var, else undefined (unset or not a number: the default). */
function positive(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** The `101 Switching Protocols` answer with the client end of the pair. */
function upgraded(client: CfWebSocket, protocol: string): Response {
  return new Response(null, { status: 101, webSocket: client, headers: { 'sec-websocket-protocol': protocol } } as ResponseInit);
}

/** Read a body to its end and drop it; past `limit` bytes stop (cancel: the connection may close then). */
async function drain(body: ReadableStream<Uint8Array>, limit: number): Promise<void> {
  const reader = body.getReader();
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
      if (read > limit) return void (await reader.cancel());
    }
  } catch {
    // The client went away: nothing to keep usable.
  }
}
