import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_FRAME_BYTES, SUBPROTOCOL } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { Dispatcher } from '../core/index.ts';
import type { AppContext } from '../app/host.ts';
import type { CorkingChannel } from './committed-channel.ts';
import { completeUpgrade } from './upgrade.ts';
import { textFrames } from './ws-frames.ts';

/**
 * The worker sockets of the embedded host: the `sockets.acceptWorker` port (the app has checked
 * the path, the subprotocol and the bearer token; app/sockets.ts) completes the upgrade with `ws`,
 * and this is the channel the dispatcher sends through.
 */
export class WorkerSockets implements CorkingChannel {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<string, WebSocket>();
  private dispatcher: Dispatcher | undefined;
  private readonly log: Logger;
  /** While `corked()` runs: each socket's frames, written as one Buffer when it returns. */
  private held: Map<WebSocket, string[]> | undefined;

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

  /** The `sockets.acceptWorker` port: the upgrade passed the app's checks. */
  acceptWorker(c: AppContext, workerId: string): Response {
    return completeUpgrade(c, this.wss, (ws) => this.accept(ws, workerId));
  }

  private accept(ws: WebSocket, workerId: string): void {
    const dispatcher = this.dispatcher as Dispatcher;
    const connId = randomBytes(8).toString('hex');
    this.sockets.set(connId, ws);
    dispatcher.connectionOpened(connId, workerId);
    // The frames of one read reach the dispatcher together (a quick job's accept and result are
    // then stored by one statement, Dispatcher.handleTexts): ws emits every frame of a chunk in
    // the same tick, and the microtask runs once the chunk is done, before any other socket's.
    let read: string[] | undefined;
    const handleRead = () => {
      const texts = read;
      read = undefined;
      if (texts) dispatcher.handleTexts(connId, texts);
    };
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (read) handleRead();
        dispatcher.handleBinary(connId);
        return;
      }
      if (read) read.push(data.toString());
      else {
        read = [data.toString()];
        queueMicrotask(handleRead);
      }
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
    if (this.held) {
      const texts = this.held.get(ws);
      if (texts) texts.push(text);
      else this.held.set(ws, [text]);
      return;
    }
    ws.send(text);
  }

  /** Run `fn`; what it sends is written once per socket when it returns (see CommittedChannel). */
  corked(fn: () => void): void {
    const held = new Map<WebSocket, string[]>();
    this.held = held;
    try {
      fn();
    } finally {
      this.held = undefined;
      for (const [ws, texts] of held) writeFrames(ws, texts);
    }
  }

  close(connId: string, code: number, reason: string): void {
    const ws = this.sockets.get(connId);
    if (!ws) return;
    // Frames held for this socket go before its close frame.
    const texts = this.held?.get(ws);
    if (texts) {
      this.held?.delete(ws);
      writeFrames(ws, texts);
    }
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

/**
 * A socket's frames in one write. Straight to the TCP socket: `ws` queues nothing of its own here
 * (no permessage-deflate, text only, so its sender writes each frame at once), so the order with
 * frames `ws` writes itself (pongs, the close frame) is kept.
 */
function writeFrames(ws: WebSocket, texts: string[]): void {
  if (ws.readyState !== ws.OPEN) return;
  (ws as unknown as { _socket: Socket })._socket.write(textFrames(texts));
}
