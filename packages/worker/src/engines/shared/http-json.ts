/**
 * One HTTP exchange with a local or hosted generation server, answered as a value instead of an
 * exception, so each engine maps statuses and network failures to its own messages. Shared by the
 * A1111 and OpenAI-compatible engines and the input-image fetch (it lived in a1111/, which made every
 * daemon import that engine's folder; engines load only when switched on, roster.ts).
 */
export type HttpReply =
  | { kind: 'response'; status: number; headers: Headers; text: string; json: unknown }
  | { kind: 'unreachable'; message: string }
  | { kind: 'timeout'; afterMs: number }
  | { kind: 'aborted' };

export interface HttpRequest {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
  /** Whole exchange, body included; none when absent. */
  timeoutMs?: number;
}

class TimedOut extends Error {}

export async function requestJson(url: string, request: HttpRequest): Promise<HttpReply> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(request.signal?.reason);
  if (request.signal?.aborted) return { kind: 'aborted' };
  request.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    request.timeoutMs === undefined ? undefined : setTimeout(() => controller.abort(new TimedOut()), request.timeoutMs);
  try {
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    let body: string | undefined;
    if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.body);
    }
    const response = await fetch(url, { method: request.method, headers, body, signal: controller.signal });
    const text = await response.text();
    return { kind: 'response', status: response.status, headers: response.headers, text, json: parseJson(text) };
  } catch (error) {
    if (controller.signal.reason instanceof TimedOut) return { kind: 'timeout', afterMs: request.timeoutMs ?? 0 };
    if (controller.signal.aborted) return { kind: 'aborted' };
    return { kind: 'unreachable', message: networkErrorMessage(error) };
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
  }
}

/** A JSON text's value, or undefined when it is not JSON (an engine's error page, a cut-off body). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * undici reports every network failure as "fetch failed" and hides the useful part (ECONNREFUSED,
 * ENOTFOUND, "other side closed") in `cause`.
 */
export function networkErrorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    const text = cause.message || code || error.message;
    return code !== undefined && !text.includes(code) ? `${code}: ${text}` : text;
  }
  return error.message;
}

/** `{ "a": { "b": 1 } }`, path ["a","b"] → 1; anything missing → undefined. */
export function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** A server's text, cut to a length that fits in a failure message. */
export function excerpt(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Resolves true if `promise` settles within `ms`, false otherwise; never rejects. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
