import type { StudioEvent } from '@studio-worker/protocol';
import type { Access, EventSink } from '../core/index.ts';
import { REALTIME_ROUTE } from './sockets.ts';

/** Events queued for one dashboard that does not read them, before its socket is dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** How long events coalesce before a batch goes out. */
const FLUSH_MS = 100;
const OPEN = 1;

/** A dashboard's socket as the hub needs it: `ws`'s WebSocket and a Worker's WebSocket both are this. */
export interface FeedSocket {
  /** 1 while open (the WebSocket standard's OPEN). */
  readonly readyState: number;
  /** Bytes queued and not yet written; a host that cannot tell answers 0. */
  readonly bufferedAmount: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * The dashboards' live feed, the same on every host: the host accepts each socket the app admitted
 * (sockets.ts) and `add`s it here with its token. Events are coalesced per job / worker and flushed
 * every 100 ms as `{"events":[…]}`, so a burst of thousands of job changes costs a dashboard a
 * handful of messages. The token is checked again before each batch (core's rule for
 * `GET /realtime`): a feed whose token was revoked is closed with 1008.
 */
export class FeedHub implements EventSink {
  /** Each open feed with the token it was opened with. */
  private readonly clients = new Map<FeedSocket, string>();
  private readonly pending = new Map<string, StudioEvent>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly access: () => Access;
  /** Drops a socket that stopped reading (Node: `ws.terminate()`); default: close it. */
  private readonly drop: (socket: FeedSocket) => void;

  constructor(access: () => Access, drop: (socket: FeedSocket) => void = (socket) => socket.close(1008, 'too far behind')) {
    this.access = access;
    this.drop = drop;
  }

  get enabled(): boolean {
    return this.clients.size > 0;
  }

  /** A feed the host has just accepted: it gets a hello, then every batch. */
  add(socket: FeedSocket, token: string): void {
    this.clients.set(socket, token);
    socket.send(JSON.stringify({ events: [], hello: true }));
  }

  /** Its socket closed or failed. */
  remove(socket: FeedSocket): void {
    this.clients.delete(socket);
  }

  get size(): number {
    return this.clients.size;
  }

  publish(event: StudioEvent): void {
    this.pending.set(eventKey(event), event);
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const text = JSON.stringify({ events: [...this.pending.values()] });
    this.pending.clear();
    for (const [socket, token] of this.clients) {
      if (socket.readyState !== OPEN) continue;
      // A token revoked while its feed is open gets nothing more: checked as each batch goes out
      // (one indexed lookup per feed and batch; there are a handful of dashboards, not thousands).
      if (!this.access().admit(token, 'GET', REALTIME_ROUTE).ok) {
        this.clients.delete(socket);
        socket.close(1008, 'the token was revoked');
        continue;
      }
      // A dashboard that stopped reading would make us hold every event for it: it reloads instead.
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) this.drop(socket);
      else socket.send(text);
    }
  }

  /** Stop: no more batches; the host closes the sockets it holds. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
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
