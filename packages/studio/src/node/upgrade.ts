import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '@studio-worker/log';
import type { AppContext } from '../app/host.ts';
import { errorResponse } from '../app/http-errors.ts';
import type { NodeBindings } from './host.ts';

/** What the upgrade handler passes through `app.fetch` for the sockets port to finish the handshake with. */
export interface PendingUpgrade {
  socket: Duplex;
  head: Buffer;
  /** Set by the sockets port once `ws` owns the socket: the app's answer is then not written. */
  taken: boolean;
}

/**
 * The pathname of a request target, in origin form (`/a/b?q`) or absolute form
 * (`http://host/a/b`); undefined when it is neither (a bad URL, `*`, garbage). Never throws.
 */
export function targetPath(target: string | undefined): string | undefined {
  if (!target) return undefined;
  if (target.startsWith('/')) {
    // `//x` would read as a host in a URL parser; a path is all we want.
    const end = target.search(/[?#]/);
    return end < 0 ? target : target.slice(0, end);
  }
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    return new URL(target).pathname;
  } catch {
    return undefined;
  }
}

/**
 * The server's `upgrade` listener: the upgrade becomes a `Request` (its path, query and headers)
 * that runs through the same `app.fetch` as every request, with the raw socket in its bindings.
 * The app checks it (app/sockets.ts); on success the sockets port completes the handshake with
 * `ws` (`completeUpgrade`), otherwise the app's answer is written to the socket as a plain HTTP
 * refusal. Whatever a stranger sends (a bad target, a bad escape, a socket that resets
 * mid-handshake), the answer is a 400 or a closed socket, never an exception that takes the
 * process down.
 */
export function upgradeHandler(log: Logger, fetch: (request: Request, env: NodeBindings) => Response | Promise<Response>): (request: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (request, socket, head) => {
    // Node leaves an upgraded socket without an error listener; a reset would otherwise be fatal.
    socket.on('error', (error) => log.debug({ op: 'upgrade', err: error.message }, 'upgrade socket error'));
    const path = targetPath(request.url);
    if (path === undefined) return refuse(socket, 400, 'the request target is not a valid path or http(s) URL');
    const upgrade: PendingUpgrade = { socket, head, taken: false };
    const fail = (error: Error) => {
      log.warn({ op: 'upgrade', path, err: error.message }, 'upgrade handler failed');
      if (!upgrade.taken) refuse(socket, 400, 'the upgrade request could not be handled');
    };
    try {
      const query = request.url?.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      const headers = new Headers();
      for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
        try {
          headers.append(request.rawHeaders[i] as string, request.rawHeaders[i + 1] as string);
        } catch {
          // A header a Web `Headers` refuses is not one the app reads.
        }
      }
      const answer = fetch(new Request(`http://localhost${path}${query}`, { method: request.method, headers }), { incoming: request, upgrade });
      Promise.resolve(answer).then((response) => {
        if (!upgrade.taken) return writeRefusal(socket, response);
      }).catch(fail);
    } catch (error) {
      fail(error as Error);
    }
  };
}

/**
 * The sockets port's half (worker sockets and the dashboard feed): hand the upgrade the app
 * admitted to `ws`, which answers 101 (or its own 400 for a broken handshake). The answer
 * returned is a placeholder the upgrade handler drops. A request that reached the route without
 * an upgrade (an `Upgrade` header but no `Connection: upgrade`) gets a 400.
 */
export function completeUpgrade(c: AppContext, wss: WebSocketServer, accepted: (ws: WebSocket) => void): Response {
  const env = c.env as NodeBindings;
  const upgrade = env.upgrade;
  if (!upgrade) return errorResponse(c, 400, 'bad_upgrade', 'send a WebSocket handshake (Connection: Upgrade, Upgrade: websocket)');
  upgrade.taken = true;
  wss.handleUpgrade(env.incoming, upgrade.socket, upgrade.head, accepted);
  return new Response(null, { status: 204 });
}

/** An answer to an upgrade that was not taken, written as plain HTTP, then the socket is closed. */
async function writeRefusal(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  if (socket.destroyed) return;
  const type = response.headers.get('content-type') ?? 'application/json';
  socket.end(`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.toString('latin1')}`, 'latin1');
}

/** Refuse an upgrade before it reaches the app (its target is not even a path): a plain HTTP answer whose JSON body says why, then close. */
export function refuse(socket: Duplex, status: 400, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: 'bad_upgrade', message });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
