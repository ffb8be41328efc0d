import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@studio-worker/log';

export type UpgradeRoute = (request: IncomingMessage, socket: Duplex, head: Buffer, path: string) => void;

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

/** Percent-decoding that answers undefined for a bad escape instead of throwing a URIError. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * The one guard around the server's `upgrade` listener: whatever a stranger sends (a bad target,
 * a bad escape, a socket that resets mid-handshake), the answer is a 400 or a closed socket, never
 * an exception that takes the process down. Routes get the target's path already parsed.
 */
export function guardUpgrade(log: Logger, route: UpgradeRoute): (request: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (request, socket, head) => {
    // Node leaves an upgraded socket without an error listener; a reset would otherwise be fatal.
    socket.on('error', (error) => log.debug({ op: 'upgrade', err: error.message }, 'upgrade socket error'));
    const path = targetPath(request.url);
    if (path === undefined) return refuse(socket, 400, 'the request target is not a valid path or http(s) URL');
    try {
      route(request, socket, head, path);
    } catch (error) {
      log.warn({ op: 'upgrade', path, err: (error as Error).message }, 'upgrade handler failed');
      if (!socket.destroyed) refuse(socket, 400, 'the upgrade request could not be handled');
    }
  };
}

/** Refuse an upgrade with a plain HTTP answer whose JSON body says why (`code`, else one per status), then close. */
export function refuse(socket: Duplex, status: 400 | 401 | 403 | 404 | 503, message: string, code?: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: code ?? (status === 401 ? 'auth_failed' : status === 404 ? 'not_found' : 'bad_upgrade'), message });
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status];
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
