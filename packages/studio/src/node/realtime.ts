import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { API_PREFIX, type StudioEvent } from '@studio-worker/protocol';
import type { Access, EventSink } from '../core/index.ts';
import { refuse } from './upgrade.ts';

/** The feed's path relative to the API prefix, as core's access rules name it. */
const REALTIME_ROUTE = '/realtime';
export const REALTIME_PATH = `${API_PREFIX}${REALTIME_ROUTE}`;
export const DASHBOARD_PROTOCOL = 'studio-dashboard';
/** Events queued for one dashboard that does not read them, before its socket is dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * The dashboards' live feed. Browsers cannot set headers on a WebSocket, so the token comes as a
 * second subprotocol `bearer.<token>` (never in the URL, which proxies log). Who may open it is
 * core's rule for `GET /realtime` (core/access.ts): the admin token and API tokens of scope `admin`
 * or `read`; checked at the upgrade and again before each batch is sent (a revoked token's feed is
 * closed with 1008). Events are
 * coalesced per job / worker and flushed every 100 ms as `{"events":[…]}`, so a burst of thousands
 * of job changes costs a dashboard a handful of messages.
 */
export class RealtimeHub implements EventSink {
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // Dashboards only listen; a frame from one is never more than a close.
    maxPayload: 64 * 1024,
    handleProtocols: () => DASHBOARD_PROTOCOL,
  });
  /** Each open feed with the token it was opened with. */
  private readonly clients = new Map<WebSocket, string>();
  private readonly pending = new Map<string, StudioEvent>();
  private timer: NodeJS.Timeout | undefined;
  private readonly access: () => Access;

  constructor(access: () => Access) {
    this.access = access;
  }

  get enabled(): boolean {
    return this.clients.size > 0;
  }

  publish(event: StudioEvent): void {
    const key = eventKey(event);
    this.pending.set(key, event);
    this.timer ??= setTimeout(() => this.flush(), 100);
  }

  private flush(): void {
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const text = JSON.stringify({ events: [...this.pending.values()] });
    this.pending.clear();
    for (const [ws, token] of this.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      // A token revoked while its feed is open gets nothing more: checked as each batch goes out
      // (one indexed lookup per feed and batch; there are a handful of dashboards, not thousands).
      if (!this.access().admit(token, 'GET', REALTIME_ROUTE).ok) {
        this.clients.delete(ws);
        ws.close(1008, 'the token was revoked');
        continue;
      }
      // A dashboard that stopped reading would make us hold every event for it: it reloads instead.
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) ws.terminate();
      else ws.send(text);
    }
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const token = protocols.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
    const admitted = protocols.includes(DASHBOARD_PROTOCOL) ? this.access().admit(token, 'GET', REALTIME_ROUTE) : undefined;
    if (!admitted || (!admitted.ok && admitted.error.status === 401)) {
      return refuse(socket, 401, `open the feed with subprotocols ["${DASHBOARD_PROTOCOL}", "bearer.<token>"], the token being the admin token or a live API token of scope admin or read`);
    }
    if (!admitted.ok) return refuse(socket, 403, admitted.error.message, admitted.error.code);
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      this.clients.set(ws, token ?? '');
      ws.on('close', () => this.clients.delete(ws));
      ws.on('error', () => this.clients.delete(ws));
      ws.send(JSON.stringify({ events: [], hello: true }));
    });
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const ws of this.clients.keys()) ws.terminate();
    this.wss.close();
  }
}

/** Events about one thing coalesce: only the latest per job, worker or pending request is sent. */
function eventKey(event: StudioEvent): string {
  switch (event.type) {
    case 'job':
      return `job:${event.job.id}`;
    case 'worker':
      return `worker:${event.worker.id}`;
    case 'workerRemoved':
      return `worker:${event.workerId}`;
    case 'pendingAdded':
      return `pending:${event.request.requestId}`;
    case 'pendingRemoved':
      return `pending:${event.requestId}`;
    case 'jobPreview':
      // Only the newest picture of a job matters.
      return `preview:${event.jobId}`;
  }
}
