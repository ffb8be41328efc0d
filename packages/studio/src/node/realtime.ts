import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StudioEvent } from '@studio-worker/protocol';
import type { AdminAuth, EventSink } from '../core/index.ts';
import { refuse } from './upgrade.ts';

export const REALTIME_PATH = '/graphics/api/realtime';
export const DASHBOARD_PROTOCOL = 'studio-dashboard';
/** Events queued for one dashboard that does not read them, before its socket is dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * The dashboards' live feed. Browsers cannot set headers on a WebSocket, so the admin token comes
 * as a second subprotocol `bearer.<token>` (never in the URL, which proxies log). Events are
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
  private readonly clients = new Set<WebSocket>();
  private readonly pending = new Map<string, StudioEvent>();
  private timer: NodeJS.Timeout | undefined;
  private readonly admin: () => AdminAuth;

  constructor(admin: () => AdminAuth) {
    this.admin = admin;
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
    for (const ws of this.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      // A dashboard that stopped reading would make us hold every event for it: it reloads instead.
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) ws.terminate();
      else ws.send(text);
    }
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const token = protocols.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
    if (!protocols.includes(DASHBOARD_PROTOCOL) || !this.admin().verify(token)) {
      return refuse(socket, 401, `open the feed with subprotocols ["${DASHBOARD_PROTOCOL}", "bearer.<admin token>"]`);
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      this.clients.add(ws);
      ws.on('close', () => this.clients.delete(ws));
      ws.on('error', () => this.clients.delete(ws));
      ws.send(JSON.stringify({ events: [], hello: true }));
    });
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const ws of this.clients) ws.terminate();
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
