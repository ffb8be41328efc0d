import type { Logger } from '@studio-worker/log';
import { createStudioCore, type StudioCore, type WorkerChannel, type EventSink, noEvents } from '../core/index.ts';
import { DurableSql } from './sql.ts';
import { workerdCrypto } from './crypto.ts';
import { workerdLogger } from './logger.ts';
import { R2Results } from './r2-results.ts';
import type { CfWebSocket, DurableObjectState, StudioEnv, WebSocketPairConstructor } from './types.ts';

declare const WebSocketPair: WebSocketPairConstructor;

/** Tags on the object's hibernatable sockets: a worker session, a dashboard feed. */
export const WORKER_TAG = 'worker';
export const FEED_TAG = 'feed';

/** What a worker socket carries across hibernation (serializeAttachment, at most 2,048 bytes). */
interface WorkerAttachment {
  kind: 'worker';
  connId: string;
  workerId: string;
  /** Dispatcher.sessionSnapshot after the last message on this socket (undefined before hello). */
  session?: unknown;
}

/**
 * One pool's studio: a Durable Object with SQLite storage running the same core, schema and
 * migrations as the embedded host. Its worker sockets are hibernatable (`ctx.acceptWebSocket`):
 * the object may be evicted from memory while they stay open, and its constructor runs again on
 * the next event, so everything the dispatcher keeps in memory comes back from SQL and from each
 * socket's attachment (kept current after every message). Periodic work (lease sweep, retry
 * backoff) runs from the object's alarm, set to when the core next needs to wake.
 */
export class StudioObject implements WorkerChannel {
  private readonly ctx: DurableObjectState;
  private readonly env: StudioEnv;
  private readonly log: Logger;
  private readonly core: StudioCore;
  private readonly results: R2Results;
  /** Worker sockets by connection id (rebuilt from the attachments after an eviction). */
  private readonly sockets = new Map<string, CfWebSocket>();
  private readonly pool: string;
  /** The alarm as last read or set (undefined: not read yet since the object started). */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: StudioEnv) {
    this.ctx = ctx;
    this.env = env;
    // idFromName(pool): the object knows its own pool (workerd ≥ 2025 keeps the name on the id).
    this.pool = ctx.id.name ?? 'default';
    this.log = workerdLogger(env.STUDIO_LOG_LEVEL, { app: 'studio', host: 'cloudflare', pool: this.pool });
    const sql = new DurableSql(ctx.storage);
    this.core = createStudioCore(
      { sql, clock: Date, channel: this, events: this.events(), crypto: workerdCrypto },
      this.log,
      { allowLoopbackHttpModels: env.STUDIO_ALLOW_LOOPBACK_MODELS === '1', pool: this.pool },
    );
    if (env.STUDIO_ADMIN_TOKEN) this.core.admin.init(env.STUDIO_ADMIN_TOKEN);
    else this.log.error({ op: 'start' }, 'STUDIO_ADMIN_TOKEN is not set: admin routes refuse every caller; set it with `wrangler secret put STUDIO_ADMIN_TOKEN`');
    this.results = new R2Results(env.RESULTS, workerdCrypto);
    this.restoreSockets();
  }

  private events(): EventSink {
    return noEvents;
  }

  /** After an eviction: every open worker socket's session back into the dispatcher. */
  private restoreSockets(): void {
    const dispatcher = this.core.dispatcher;
    let restored = 0;
    for (const ws of this.ctx.getWebSockets(WORKER_TAG)) {
      const attachment = ws.deserializeAttachment() as WorkerAttachment | null;
      if (!attachment || attachment.kind !== 'worker') continue;
      this.sockets.set(attachment.connId, ws);
      const alive = attachment.session !== undefined && dispatcher.restoreSession(attachment.session);
      if (!alive) {
        // No snapshot yet (it never said hello) or one the core refused: a fresh session, as if it
        // had just connected. The worker's next frame is then read as a greeting.
        if (attachment.session === undefined) this.core.dispatcher.connectionOpened(attachment.connId, attachment.workerId);
        continue;
      }
      restored++;
    }
    if (restored > 0) this.log.info({ op: 'hibernation', restored }, 'sessions restored after the object was evicted');
  }

  async fetch(request: Request): Promise<Response> {
    try {
      return await this.route(request);
    } finally {
      await this.scheduleWake();
    }
  }

  private async route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/graphics/api/health') {
      return Response.json({ ok: true, version: this.env.STUDIO_VERSION ?? '0.1.0', workersOnline: this.core.dispatcher.sessionCount(), pool: this.pool });
    }
    void this.results;
    return Response.json({ error: { code: 'not_found', message: `no route ${request.method} ${url.pathname}` } }, { status: 404 });
  }

  /** Accept a worker socket the app authenticated: hibernatable, its connection id in the attachment. */
  acceptWorker(workerId: string, protocol: string): Response {
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    const connId = workerdCrypto.randomHex(8);
    this.ctx.acceptWebSocket(server, [WORKER_TAG]);
    const attachment: WorkerAttachment = { kind: 'worker', connId, workerId };
    server.serializeAttachment(attachment);
    this.sockets.set(connId, server);
    this.core.dispatcher.connectionOpened(connId, workerId);
    return new Response(null, { status: 101, webSocket: client, headers: { 'sec-websocket-protocol': protocol } } as ResponseInit);
  }

  async webSocketMessage(ws: CfWebSocket, message: string | ArrayBuffer): Promise<void> {
    const attachment = ws.deserializeAttachment() as WorkerAttachment | null;
    if (!attachment || attachment.kind !== 'worker') return;
    if (typeof message === 'string') this.core.dispatcher.handleText(attachment.connId, message);
    else this.core.dispatcher.handleBinary(attachment.connId);
    this.keepAttachment(ws, attachment);
    await this.scheduleWake();
  }

  /** The session's in-memory part beside its socket, so an eviction after this message loses nothing. */
  private keepAttachment(ws: CfWebSocket, attachment: WorkerAttachment): void {
    const snapshot = this.core.dispatcher.sessionSnapshot(attachment.connId);
    if (snapshot === undefined) return;
    try {
      ws.serializeAttachment({ ...attachment, session: snapshot });
    } catch (error) {
      // Over 2,048 bytes (a worker refusing very many jobs): the previous snapshot stays.
      this.log.warn({ op: 'hibernation', connId: attachment.connId, err: (error as Error).message }, 'a session snapshot did not fit the socket attachment');
    }
  }

  async webSocketClose(ws: CfWebSocket, code: number, reason: string): Promise<void> {
    const attachment = ws.deserializeAttachment() as WorkerAttachment | null;
    if (attachment?.kind === 'worker') {
      this.sockets.delete(attachment.connId);
      this.core.dispatcher.connectionClosed(attachment.connId, code, reason);
    }
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
    await this.scheduleWake();
  }

  async webSocketError(ws: CfWebSocket, error: unknown): Promise<void> {
    this.log.warn({ op: 'connect', err: (error as Error)?.message }, 'worker socket error');
    await this.webSocketClose(ws, 1006, 'socket error');
  }

  // ------------------------------------------------------------------ WorkerChannel

  send(connId: string, text: string): void {
    try {
      this.sockets.get(connId)?.send(text);
    } catch {
      // Closed meanwhile: sending on a closed connection is a no-op (the port's contract).
    }
  }

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

  /** The core's periodic work (lease sweep, retry backoff, webhooks, log pruning) that is due now. */
  async alarm(): Promise<void> {
    this.alarmAt = null;
    await this.core.housekeeping.runDue(Date.now());
    await this.scheduleWake();
  }

  /**
   * Keep the alarm at the core's next wake-up. Asked after every request and message, because a
   * new claim or webhook may bring it forward; the alarm is only written when it must move earlier
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
