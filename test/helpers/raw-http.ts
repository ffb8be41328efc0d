// Raw HTTP over `net`: the request bytes exactly as a hostile or odd client sends them (no fetch, no
// undici normalising anything), and what a process holds (/proc/<pid>/fd, .part files) afterwards.
import { connect, type Socket } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RawAnswer {
  /** Everything the server sent, as bytes. */
  bytes: Buffer;
  /** The status code of the first response line, or 0 if none came. */
  status: number;
  /** Who ended it: the server closed, or we gave up waiting. */
  end: 'closed' | 'timeout' | 'error';
  ms: number;
}

export interface RawOptions {
  /** Give up after this long (the answer says `timeout`). */
  timeoutMs?: number;
  /** Close our side after writing (a half-close: "no more request bytes"). */
  halfClose?: boolean;
  /** Drop the connection as soon as this many answer bytes arrived (a client that goes away mid-body). */
  dropAfterBytes?: number;
  /** Close our side the moment a whole response (by Content-Length) arrived, as curl does. */
  closeWhenComplete?: boolean;
  /** Write the request in pieces with a turn of the event loop between them. */
  chunks?: number;
}

/** Send `request` on a fresh connection and collect the answer until the server closes (or timeout). */
export function rawRequest(port: number, request: string | Buffer, options: RawOptions = {}): Promise<RawAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const parts: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (end: RawAnswer['end']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(parts);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(bytes.subarray(0, 64).toString('latin1'))?.[1] ?? 0);
      resolve({ bytes, status, end, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish('timeout'), options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      received += chunk.length;
      if (options.dropAfterBytes !== undefined && received >= options.dropAfterBytes) finish('closed');
      if (options.closeWhenComplete && complete(Buffer.concat(parts))) finish('closed');
    });
    socket.on('end', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('error', () => finish('error'));
    socket.on('connect', () => void write(socket, request, options));
  });
}

function complete(bytes: Buffer): boolean {
  const split = bytes.indexOf('\r\n\r\n');
  if (split < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(bytes.subarray(0, split).toString('latin1'))?.[1];
  return length !== undefined && bytes.length >= split + 4 + Number(length);
}

async function write(socket: Socket, request: string | Buffer, options: RawOptions): Promise<void> {
  const bytes = Buffer.isBuffer(request) ? request : Buffer.from(request, 'latin1');
  const n = Math.max(1, options.chunks ?? 1);
  const size = Math.ceil(bytes.length / n);
  for (let i = 0; i < bytes.length; i += size) {
    if (socket.destroyed) return;
    socket.write(bytes.subarray(i, i + size));
    if (n > 1) await new Promise((resolve) => setImmediate(resolve));
  }
  if (options.halfClose && !socket.destroyed) socket.end();
}

/** Split a raw answer into its head (status line + headers, lowercased names) and body. */
export function parseAnswer(bytes: Buffer): { status: number; headers: Map<string, string>; body: Buffer } {
  const split = bytes.indexOf('\r\n\r\n');
  const head = bytes.subarray(0, split < 0 ? bytes.length : split).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { status, headers, body: split < 0 ? Buffer.alloc(0) : bytes.subarray(split + 4) };
}

/**
 * A chunked body that starts at `start` in `bytes`, decoded: the body and the index just past its
 * last chunk (trailers are not expected), or undefined while it has not all arrived.
 */
export function decodeChunked(bytes: Buffer, start = 0): { body: Buffer; used: number } | undefined {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const eol = bytes.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(bytes.subarray(at, eol).toString('latin1'), 16);
    if (bytes.length < eol + 2 + size + 2) return undefined;
    if (size === 0) return { body: Buffer.concat(parts), used: eol + 4 };
    parts.push(bytes.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Open file descriptors of a process (Linux). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident memory of a process in MiB (Linux). */
export function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kb / 1024;
}

/** Half-written upload files under a data directory (there should never be any at rest). */
export function partFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.part')) out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

/** Wait until `check` is true, re-checking on a short interval (for process-level state like fds). */
export async function settle(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}
