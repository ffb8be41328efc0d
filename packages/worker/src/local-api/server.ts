import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@studio-worker/log';
import { http } from '../platform/node-http.ts';
import { ApiError } from './errors.ts';
import { checkRequest } from './guards.ts';
import { sendBytes, sendError, sendJson } from './http.ts';
import type { Router } from './router.ts';
import type { StaticUi } from './static-ui.ts';

export const LOCAL_API_HOST = '127.0.0.1';

export interface LocalApiServerOptions {
  /** The port to try first; 0 means any free port. */
  port: number;
  token: string;
  /** Named in the 401 message: where a client finds the token. */
  discoveryFile: string;
  routes: Router;
  ui: StaticUi;
  /** `GET /healthz`, answered without auth. */
  health: () => Promise<unknown> | unknown;
  log: Logger;
}

/**
 * The local API's HTTP server, on 127.0.0.1 only. Every request except `GET /healthz` and the UI's
 * static files passes the Host, Origin and token guards, in that order, before its route runs.
 */
export class LocalApiServer {
  readonly url: string;
  readonly port: number;
  /** The first-choice port was taken and an ephemeral one is used instead. */
  readonly fellBack: boolean;
  readonly #server: Server;

  private constructor(server: Server, port: number, fellBack: boolean) {
    this.#server = server;
    this.port = port;
    this.fellBack = fellBack;
    this.url = `http://${LOCAL_API_HOST}:${port}`;
  }

  /** Listen on the first-choice port, or on an ephemeral one when that is taken (said in the log). */
  static async start(options: LocalApiServerOptions): Promise<LocalApiServer> {
    const server = http.createServer((req, res) => void handle(options, req, res));
    // Keep-alive sockets must not hold a shutdown up.
    server.keepAliveTimeout = 5_000;
    let port: number;
    let fellBack = false;
    try {
      port = await listen(server, options.port);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (options.port === 0 || (code !== 'EADDRINUSE' && code !== 'EACCES')) throw error;
      port = await listen(server, 0);
      fellBack = true;
      options.log.warn(
        { op: 'local_api', wanted: options.port, port, code },
        `local API port ${options.port} is ${code === 'EACCES' ? 'not allowed' : 'in use'}; listening on ${LOCAL_API_HOST}:${port} instead (clients find it in local-api.json)`,
      );
    }
    return new LocalApiServer(server, port, fellBack);
  }

  /** Stop listening and drop every connection (open streams included). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, LOCAL_API_HOST);
  });
}

async function handle(options: LocalApiServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  let path = '/';
  let openAi = false;
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new Error('the client went away'));
  });
  try {
    const url = requestUrl(req.url);
    path = url.pathname;
    openAi = path.startsWith('/v1/');
    if (method === 'GET' && path === '/healthz') {
      sendJson(res, 200, await options.health());
    } else if (options.ui.handles(method, path)) {
      const file = await options.ui.serve(path);
      if (!file) throw new ApiError(404, 'not_found', `no UI file at ${path}`);
      sendBytes(res, 200, file.body, file.contentType);
    } else {
      checkRequest(req.headers, options.token, options.discoveryFile);
      const { handler, params } = options.routes.match(method, path);
      const reply = await handler({ req, res, url, params, signal: controller.signal });
      if ('handled' in reply) {
        // The handler wrote (or is writing) the answer itself.
      } else if ('json' in reply) {
        sendJson(res, reply.status ?? 200, reply.json, reply.headers);
      } else {
        sendBytes(res, reply.status ?? 200, reply.bytes, reply.contentType, reply.headers);
      }
    }
  } catch (error) {
    const apiError = error instanceof ApiError ? error : new ApiError(500, 'internal_error', `the local API failed: ${error instanceof Error ? error.message : String(error)}; see the daemon log`);
    if (!(error instanceof ApiError)) options.log.error({ op: 'local_api', method, path, err: error }, `${method} ${path} failed`);
    sendError(res, apiError, openAi);
  }
  options.log.debug({ op: 'local_api', method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
}

/** The request target as a URL; a target that is not one (`http://[::1/x`, `http://%zz/`) is the client's error (400). */
function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    throw new ApiError(400, 'bad_request_target', 'the request target is not a valid path or URL; send a path such as /daemon/status');
  }
}
