import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { BenchError } from './errors.ts';

/**
 * The bench's own HTTP client, for the calls it times (job submits, batches, dashboard lists) and
 * figures it reports (idle-sessions' workers created per second). Setup and checks (workers, models,
 * health) go through `@studio-worker/client` like any other API user. Not the typed client here:
 * its fetch costs more client CPU per request than a raw keep-alive socket (it would sit inside
 * every latency sample), its retries would hide a failed request in a slower sample, and its
 * idempotency key on every submit adds a `job_keys` write per job that the BullMQ peer does not do.
 *
 * The admin HTTP calls the bench times; bodies may be pre-serialized so the timed path skips it.
 */
export interface ApiClient {
  /** POST a JSON body (object or ready JSON text) under /graphics/api; answers the parsed JSON. */
  post<T>(path: string, body: unknown): Promise<T>;
  get<T>(path: string): Promise<T>;
  close(): void;
}

export type ClientKind = 'raw' | 'http' | 'fetch';

const API = '/graphics/api';

function bodyText(body: unknown): string {
  return typeof body === 'string' ? body : JSON.stringify(body);
}

function failure(method: string, path: string, status: number, text: string): BenchError {
  return new BenchError('api_error', `${method} ${API}${path} answered ${status}: ${text.slice(0, 500)}`);
}

export function createApiClient(kind: ClientKind, baseUrl: string, adminToken: string): ApiClient {
  if (kind === 'fetch') return fetchClient(baseUrl, adminToken);
  return kind === 'http' ? httpClient(baseUrl, adminToken) : rawClient(baseUrl, adminToken);
}

/**
 * HTTP/1.1 written and read by hand on keep-alive sockets (one request at a time per socket, a
 * small pool): the least client work per request, so the latency figures hold as little of the
 * bench's own cost as possible — what ioredis is to the BullMQ side. The studio answers with
 * `content-length` bodies; anything else is an error here.
 */
function rawClient(baseUrl: string, adminToken: string): ApiClient {
  const url = new URL(baseUrl);
  const port = Number(url.port);
  const host = url.hostname;
  const fixedHeaders = `Host: ${url.host}\r\nAuthorization: Bearer ${adminToken}\r\nAccept: application/json\r\nConnection: keep-alive\r\n`;
  const idle: Socket[] = [];
  const all = new Set<Socket>();

  function call<T>(method: string, path: string, body: string | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const socket = idle.pop() ?? openSocket();
      let buffered: Buffer = Buffer.alloc(0);
      const fail = (message: string) => {
        cleanup();
        socket.destroy();
        reject(new BenchError('api_unreachable', `${method} ${API}${path} failed: ${message}`));
      };
      const onError = (error: Error) => fail(error.message);
      const onClose = () => fail('the studio closed the connection');
      const onData = (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = buffered.toString('latin1', 0, headEnd);
        const status = Number(head.slice(9, 12));
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
        if (length === undefined) return fail(`answer ${status} without content-length`);
        const end = headEnd + 4 + Number(length);
        if (buffered.length < end) return;
        cleanup();
        const text = buffered.toString('utf8', headEnd + 4, end);
        if (/\r\nconnection:\s*close/i.test(head)) socket.destroy();
        else idle.push(socket);
        if (status < 200 || status >= 300) return reject(failure(method, path, status, text));
        try {
          resolve(JSON.parse(text) as T);
        } catch {
          reject(new BenchError('api_error', `${method} ${API}${path} answered something that is not JSON: ${text.slice(0, 200)}`));
        }
      };
      const cleanup = () => {
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      const head = `${method} ${API}${path} HTTP/1.1\r\n${fixedHeaders}`;
      socket.write(
        body === undefined
          ? `${head}\r\n`
          : `${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
  }

  function openSocket(): Socket {
    const socket = connect({ host, port, noDelay: true });
    all.add(socket);
    socket.once('close', () => {
      all.delete(socket);
      const at = idle.indexOf(socket);
      if (at >= 0) idle.splice(at, 1);
    });
    // An idle socket's errors end up in its close (a call in flight has its own listener).
    socket.on('error', () => {});
    return socket;
  }

  return {
    post: (path, body) => call('POST', path, bodyText(body)),
    get: (path) => call('GET', path, undefined),
    close: () => {
      for (const socket of all) socket.destroy();
    },
  };
}

/** node:http with a keep-alive agent: the least work per request on this Node (see README). */
function httpClient(baseUrl: string, adminToken: string): ApiClient {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const authorization = `Bearer ${adminToken}`;

  function call<T>(method: string, path: string, body: string | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization, accept: 'application/json' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = request({ agent, host: url.hostname, port: url.port, method, path: API + path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(failure(method, path, status, text));
          try {
            resolve(JSON.parse(text) as T);
          } catch {
            reject(new BenchError('api_error', `${method} ${API}${path} answered something that is not JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      req.on('error', (error) => reject(new BenchError('api_unreachable', `${method} ${API}${path} failed: ${error.message}`)));
      req.end(body);
    });
  }

  return {
    post: (path, body) => call('POST', path, bodyText(body)),
    get: (path) => call('GET', path, undefined),
    close: () => agent.destroy(),
  };
}

/** The global fetch (undici), which keeps connections alive by itself. */
function fetchClient(baseUrl: string, adminToken: string): ApiClient {
  const authorization = `Bearer ${adminToken}`;

  async function call<T>(method: string, path: string, body: string | undefined): Promise<T> {
    let response: Response;
    try {
      response = await fetch(baseUrl + API + path, {
        method,
        headers: body === undefined ? { authorization } : { authorization, 'content-type': 'application/json' },
        body,
      });
    } catch (error) {
      throw new BenchError('api_unreachable', `${method} ${API}${path} failed: ${(error as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) throw failure(method, path, response.status, text);
    return JSON.parse(text) as T;
  }

  return {
    post: (path, body) => call('POST', path, bodyText(body)),
    get: (path) => call('GET', path, undefined),
    close: () => {},
  };
}
