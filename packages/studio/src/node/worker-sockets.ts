import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_FRAME_BYTES, SUBPROTOCOL } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { Dispatcher } from '../core/index.ts';
import type { CorkingChannel } from './committed-channel.ts';
import { timingSafeEqualText } from '../core/index.ts';
import { nodeCrypto } from './crypto.ts';
import { decodeSegment, refuse } from './upgrade.ts';

const CONNECT_PATH = /^\/graphics\/api\/workers\/([^/]+)\/connect\/?$/;

/**
 * The worker WebSocket endpoint (`GET /graphics/api/workers/:id/connect`, bearer token +
 * subprotocol `studio-worker-v1`) and the channel the dispatcher sends through.
 */
export class WorkerSockets implements CorkingChannel {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<string, WebSocket>();
  private dispatcher: Dispatcher | undefined;
  private readonly log: Logger;
  /** Sockets corked while `corked()` runs. */
  private corking: Set<Socket> | undefined;

  constructor(log: Logger) {
    this.log = log;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  attach(dispatcher: Dispatcher): void {
    this.dispatcher = dispatcher;
  }

  matches(path: string): boolean {
    return CONNECT_PATH.test(path);
  }

  /**
   * Authenticate the upgrade; refuse with a plain HTTP answer whose body says why. Only a valid
   * token gets a socket: a deleted worker keeps its last token hash for exactly this, so its hello
   * can be answered with worker_deleted (it then stops for good instead of re-registering in a loop).
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, path: string): void {
    const dispatcher = this.dispatcher;
    const workerId = decodeSegment(CONNECT_PATH.exec(path)?.[1] ?? '');
    if (workerId === undefined) return refuse(socket, 400, 'the worker id in the path is not valid percent-encoding');
    if (!dispatcher) return refuse(socket, 503, 'the studio is starting; try again');
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!protocols.includes(SUBPROTOCOL)) return refuse(socket, 400, `request the WebSocket subprotocol ${SUBPROTOCOL}`);
    const token = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
    const worker = dispatcher.workers.get(workerId);
    const tokenOk = !!token && !!worker?.token_hash && timingSafeEqualText(nodeCrypto.sha256Hex(token), worker.token_hash);
    if (!tokenOk) {
      this.log.warn({ op: 'connect', workerId: workerId.slice(0, 100), remote: request.socket.remoteAddress }, 'refused a worker connection: bad or missing token');
      return refuse(socket, 401, `worker ${workerId.slice(0, 100)} is unknown or the bearer token is wrong; re-register the worker`);
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, workerId));
  }

  private accept(ws: WebSocket, workerId: string): void {
    const dispatcher = this.dispatcher as Dispatcher;
    const connId = randomBytes(8).toString('hex');
    this.sockets.set(connId, ws);
    dispatcher.connectionOpened(connId, workerId);
    ws.on('message', (data, isBinary) => {
      if (isBinary) dispatcher.handleBinary(connId);
      else dispatcher.handleText(connId, data.toString());
    });
    ws.on('close', (code, reason) => {
      this.sockets.delete(connId);
      dispatcher.connectionClosed(connId, code, reason.toString());
    });
    ws.on('error', (error) => {
      // Oversized frames and broken sockets land here; the close event follows.
      this.log.warn({ op: 'connect', workerId, err: error.message }, 'worker socket error');
    });
  }

  send(connId: string, text: string): void {
    const ws = this.sockets.get(connId);
    if (!ws || ws.readyState !== ws.OPEN) return;
    if (this.corking) {
      const socket = (ws as unknown as { _socket: Socket })._socket;
      if (!this.corking.has(socket)) {
        socket.cork();
        this.corking.add(socket);
      }
    }
    ws.send(text);
  }

  /** Run `fn`; what it sends is written once per socket when it returns (see CommittedChannel). */
  corked(fn: () => void): void {
    const corking = new Set<Socket>();
    this.corking = corking;
    try {
      fn();
    } finally {
      this.corking = undefined;
      for (const socket of corking) socket.uncork();
    }
  }

  close(connId: string, code: number, reason: string): void {
    const ws = this.sockets.get(connId);
    if (!ws) return;
    ws.close(code, reason);
    // A peer that never answers the close handshake must not keep the socket.
    setTimeout(() => ws.terminate(), 5000).unref();
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Close every socket (studio shutdown); workers reconnect to the next studio. */
  closeAll(code = 1001, reason = 'studio shutting down'): void {
    for (const ws of this.sockets.values()) ws.close(code, reason);
  }

  terminateAll(): void {
    for (const ws of this.sockets.values()) ws.terminate();
    this.wss.close();
  }
}
