import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import { http } from '../../platform/node-http.ts';

/**
 * node:http rather than fetch: fetch (undici) gives up on a response after 300 s without headers
 * or body bytes, and a long prompt on a slow machine legitimately takes longer than that. Here the
 * only deadlines are our own (the token watchdog and the caller's abort signal).
 */

/** Largest error or JSON body read into memory. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface OpenRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers?: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** Sends a request and resolves with the response as soon as its headers arrive. */
export function openRequest(request: OpenRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const transport = request.url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...request.headers };
    if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(request.body));
    }
    const req = transport.request(request.url, { method: request.method, headers, signal: request.signal });
    // Keeps a late abort (after the response was handed over) from becoming an uncaught 'error'.
    req.on('error', reject);
    req.on('response', (response) => {
      // With a listener, a connection lost mid-body surfaces as an "aborted" error to the reader
      // (async iteration still sees it) instead of a silent end.
      response.on('error', () => {});
      resolve(response);
    });
    req.end(request.body);
  });
}

/** Reads a whole (small) body as text; an over-long body is cut at MAX_BODY_BYTES. */
export async function readText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    chunks.push(buffer);
    bytes += buffer.length;
    if (bytes >= MAX_BODY_BYTES) {
      response.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** A GET that answers within `timeoutMs` or rejects (probes, health checks). */
export async function getWithTimeout(url: URL, options: { headers?: Record<string, string>; timeoutMs: number; signal?: AbortSignal }): Promise<SimpleResponse> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  try {
    const request: OpenRequest = { method: 'GET', url, signal };
    if (options.headers !== undefined) request.headers = options.headers;
    const response = await openRequest(request);
    return { status: response.statusCode ?? 0, headers: response.headers, text: await readText(response) };
  } catch (error) {
    if (timeout.aborted && !(options.signal?.aborted ?? false)) throw new Error(`no answer within ${options.timeoutMs} ms`, { cause: error });
    throw error;
  }
}

/** A short description of a network error: its code and message, e.g. "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:8081". */
export function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const message = error.message || error.name;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/** A URL as it may appear in logs and messages: without user:password. */
export function displayUrl(url: URL | string): string {
  const copy = new URL(url);
  copy.username = '';
  copy.password = '';
  return copy.toString().replace(/\/$/, '');
}
