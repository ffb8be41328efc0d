import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackHttp } from '../helpers/loopback-http.ts';
import { Changes } from '../helpers/wait.ts';

/** What the server saw of one request. */
export interface SeenRequest {
  path: string;
  range: string | undefined;
  userAgent: string | undefined;
  /** Whatever the test's `observe` hook answered when the request arrived (e.g. the .part size). */
  note: unknown;
}

/** Answers one request. `file` is the server's content. */
export type Responder = (req: IncomingMessage, res: ServerResponse, file: Buffer) => void;

/**
 * A real HTTP server on 127.0.0.1:0 serving one generated file, with Range support, whose answers a
 * test scripts request by request: `script(a, b)` makes the next request get `a`, the one after `b`,
 * then every later one the default (a well-behaved Range-capable server).
 */
export class FileServer {
  readonly content: Buffer;
  readonly sha256: string;
  readonly requests: SeenRequest[] = [];
  readonly changes = new Changes();
  observe: (req: IncomingMessage) => unknown = () => undefined;
  fallback: Responder = serveFile();
  readonly #script: Responder[] = [];
  readonly #http: LoopbackHttp;

  private constructor(size: number) {
    this.content = randomBytes(size);
    this.sha256 = createHash('sha256').update(this.content).digest('hex');
    this.#http = new LoopbackHttp((req, res) => {
      this.requests.push({ path: req.url ?? '', range: req.headers.range, userAgent: req.headers['user-agent'], note: this.observe(req) });
      this.changes.signal();
      const responder = this.#script.shift() ?? this.fallback;
      responder(req, res, this.content);
    });
  }

  static async start(size = 3 * 1024 * 1024): Promise<FileServer> {
    const server = new FileServer(size);
    await server.#http.listen();
    return server;
  }

  url(path = '/files/model.bin'): string {
    return `${this.#http.url}${path}`;
  }

  script(...responders: Responder[]): void {
    this.#script.push(...responders);
  }

  /** Cut every open connection, mid-body included (what a dropped network looks like to the client). */
  dropConnections(): void {
    this.#http.dropConnections();
  }

  waitForRequests(count: number): Promise<number> {
    return this.changes.waitFor(() => (this.requests.length >= count ? this.requests.length : undefined), `${count} request(s)`);
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}

function rangeStart(req: IncomingMessage): number | undefined {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * A well-behaved server: 206 + Content-Range for `Range: bytes=N-`, 416 past the end, else 200.
 * `pace` sends the body in chunks with a pause between them (for progress tests).
 */
export function serveFile(options: { ignoreRange?: boolean; pace?: { chunkBytes: number; everyMs: number } } = {}): Responder {
  return (req, res, file) => {
    const start = options.ignoreRange ? undefined : rangeStart(req);
    if (start !== undefined && start >= file.length) {
      res.writeHead(416, { 'content-range': `bytes */${file.length}` });
      res.end();
      return;
    }
    const body = start === undefined ? file : file.subarray(start);
    const headers: Record<string, string> = { 'content-length': String(body.length), 'content-type': 'application/octet-stream' };
    if (start !== undefined) headers['content-range'] = `bytes ${start}-${file.length - 1}/${file.length}`;
    res.writeHead(start === undefined ? 200 : 206, headers);
    if (!options.pace) {
      res.end(body);
      return;
    }
    const { chunkBytes, everyMs } = options.pace;
    let at = 0;
    const next = () => {
      if (res.destroyed) return;
      if (at >= body.length) {
        res.end();
        return;
      }
      res.write(body.subarray(at, at + chunkBytes));
      at += chunkBytes;
      setTimeout(next, everyMs);
    };
    next();
  };
}

/** Headers for the whole file (or the asked range), then `bytes` of body, then silence: the connection stays open. */
export function stallAfter(bytes: number): Responder {
  return (req, res, file) => {
    const start = rangeStart(req) ?? 0;
    const headers: Record<string, string> = { 'content-length': String(file.length - start) };
    if (start > 0) headers['content-range'] = `bytes ${start}-${file.length - 1}/${file.length}`;
    res.writeHead(start > 0 ? 206 : 200, headers);
    res.write(file.subarray(start, start + bytes));
  };
}

/** Announce the full length, send `fraction` of it, then cut the connection. */
export function cutAfter(fraction: number): Responder {
  return (req, res, file) => {
    const start = rangeStart(req) ?? 0;
    const rest = file.length - start;
    const headers: Record<string, string> = { 'content-length': String(rest) };
    if (start > 0) headers['content-range'] = `bytes ${start}-${file.length - 1}/${file.length}`;
    res.writeHead(start > 0 ? 206 : 200, headers);
    res.write(file.subarray(start, start + Math.floor(rest * fraction)), () => res.socket?.destroy());
  };
}

export function status(code: number): Responder {
  return (_req, res) => {
    res.writeHead(code, { 'content-type': 'text/plain' });
    res.end(`status ${code}`);
  };
}

export function redirectTo(location: string, code = 302): Responder {
  return (_req, res) => {
    res.writeHead(code, { location });
    res.end();
  };
}

/** A 206 whose Content-Range starts somewhere other than the Range asked for (a broken cache). */
export function wrongContentRange(): Responder {
  return (req, res, file) => {
    const asked = rangeStart(req) ?? 0;
    const start = Math.max(0, asked - 512);
    const body = file.subarray(start);
    res.writeHead(206, { 'content-length': String(body.length), 'content-range': `bytes ${start}-${file.length - 1}/${file.length}` });
    res.end(body);
  };
}

/** 200 with chunked encoding (no length) and only the first `bytes` of the file, ended cleanly. */
export function chunkedPrefix(bytes: number): Responder {
  return (_req, res, file) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(file.subarray(0, bytes));
  };
}

/** A 206 that claims the rest of the file in Content-Range but sends (chunked, cleanly) only half of it. */
export function shortRangeBody(): Responder {
  return (req, res, file) => {
    const start = rangeStart(req) ?? 0;
    res.writeHead(206, { 'content-range': `bytes ${start}-${file.length - 1}/${file.length}` });
    res.end(file.subarray(start, start + Math.floor((file.length - start) / 2)));
  };
}
