import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiError } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';

/**
 * Requests that never reach the app answer like everything else: a status and `{error, message}`
 * saying what to fix. Left alone, node:http and @hono/node-server answer them with an empty body.
 */

const MISSING_HOST = 'the request has no Host header; send "Host: <host>[:<port>]" (the address the studio listens on)';

/** What @hono/node-server (2.1.8, src/url.ts and src/request.ts) says when it cannot build a `Request`. */
const ADAPTER_REASONS: Record<string, string> = {
  'Missing host header': MISSING_HOST,
  'Invalid host header': 'the Host header is not a host name with an optional port; send "Host: <host>[:<port>]"',
  'Invalid URL': 'the Host header and the path do not make a URL; send "Host: <host>[:<port>]" (a port up to 65535) and a path that starts with "/"',
  'Backslash in request path': 'the path holds a backslash; write "/" between path segments',
};

function json(status: number, error: string, message: string): Response {
  const body: ApiError = { error, message };
  return Response.json(body, { status });
}

/**
 * The adapter's `errorHandler`: a request it could not turn into a `Request` is a 400 that names the
 * Host header or the path; anything else the app threw outside its own error handler is a 500.
 */
export function adapterErrorHandler(log: Logger): (error: unknown) => Response {
  return (error) => {
    const reason = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && error.name === 'RequestError') {
      return json(400, 'bad_request', ADAPTER_REASONS[reason] ?? `the request's Host header or path cannot be read (${reason}); send "Host: <host>[:<port>]" and a path that starts with "/"`);
    }
    log.error({ op: 'http', err: reason }, 'request failed before the app');
    return json(500, 'internal_error', 'the studio failed to handle this request; see its log');
  };
}

/**
 * HTTP/1.1 requires a Host header (RFC 9112 §3.2) and node refuses a request without one with an
 * empty 400 (its `requireHostHeader`, switched off in server.ts so this answers instead); the
 * adapter would take its own listening address for it. Answers whether it answered.
 */
export function refuseMissingHost(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.headers.host !== undefined || req.httpVersion !== '1.1') return false;
  const text = JSON.stringify({ error: 'bad_request', message: MISSING_HOST } satisfies ApiError);
  res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), Connection: 'close' });
  res.end(text);
  return true;
}

/** node:http's own refusals (its `clientError` event), with the statuses node would send. */
const CLIENT_ERRORS: Record<string, { status: number; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'the request head is larger than the studio reads (16 KiB); send fewer or shorter headers' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, message: 'the chunk extensions are too large; send the body without them' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'the request head did not arrive in time; send it whole' },
};

/**
 * The server's `clientError` listener: bytes that are not an HTTP/1.1 request (or a head that came too
 * slowly or too large). The socket closes after the answer, as node's default does; no answer goes to
 * a socket that already carries one.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const response = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code !== 'ECONNRESET' && socket.writable && !response?.headersSent) {
    const known = CLIENT_ERRORS[error.code ?? ''];
    const status = known?.status ?? 400;
    const body: ApiError = known
      ? { error: 'bad_request', message: known.message }
      : { error: 'bad_request', message: `the bytes sent are not an HTTP/1.1 request (${error.code ?? error.message}); send "METHOD /path HTTP/1.1", headers, an empty line` };
    const text = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}
