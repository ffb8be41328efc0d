import WebSocket from 'ws';
import { ComfyUnreachable, networkReason } from './api.ts';
import { parseComfyBinary, parseComfyEvent, type ComfyEvent } from './events.ts';

export interface ComfySocketHandlers {
  event(event: ComfyEvent): void;
  /** The connection dropped without us closing it. */
  lost(reason: string): void;
}

/**
 * One WebSocket to ComfyUI under a fixed client id. ComfyUI routes a prompt's events to the socket
 * of the client id it was queued with, and a reconnect under the same id picks the stream up again
 * (it even resends the node that is running), so reconnecting never loses the prompt.
 */
export class ComfySocket {
  readonly #url: string;
  readonly #handlers: ComfySocketHandlers;
  #ws: WebSocket | undefined;

  constructor(url: string, handlers: ComfySocketHandlers) {
    this.#url = url;
    this.#handlers = handlers;
  }

  /** Opens (or reopens) the connection; rejects with ComfyUnreachable, or the abort reason. */
  connect(signal: AbortSignal, timeoutMs: number): Promise<void> {
    this.close();
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.#url, { handshakeTimeout: timeoutMs });
      this.#ws = ws;
      let opened = false;
      const onAbort = () => {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      ws.on('open', () => {
        opened = true;
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      ws.on('unexpected-response', (_request, response) => {
        signal.removeEventListener('abort', onAbort);
        response.resume();
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(new ComfyUnreachable(`ComfyUI refused the WebSocket at ${this.#url}: HTTP ${response.statusCode}`));
      });
      ws.on('error', (error) => {
        if (opened) return; // a 'close' follows and reports it
        signal.removeEventListener('abort', onAbort);
        reject(new ComfyUnreachable(`ComfyUI WebSocket at ${this.#url} is not reachable: ${networkReason(error)}`, { cause: error }));
      });
      ws.on('message', (data, isBinary) => {
        if (this.#ws !== ws) return;
        this.#handlers.event(isBinary ? parseComfyBinary(asBytes(data)) : parseComfyEvent(data.toString()));
      });
      ws.on('close', (code, reason) => {
        if (!opened || this.#ws !== ws) return;
        this.#ws = undefined;
        this.#handlers.lost(`WebSocket closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`);
      });
    });
  }

  /** Closes without reporting a loss. */
  close(): void {
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws === undefined) return;
    ws.removeAllListeners();
    ws.on('error', () => {});
    ws.terminate();
  }
}

function asBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
