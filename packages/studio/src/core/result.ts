/**
 * Errors are values: a stable code, the HTTP status a route answers with, and a sentence that says
 * what to fix. Services return `Result`s; only the host turns them into responses.
 */
export interface StudioError {
  code: string;
  status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 500 | 503;
  message: string;
  /** wrong_pool: the pool the request belongs to (a host forwards it there). */
  pool?: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: StudioError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(status: StudioError['status'], code: string, message: string): Result<T> {
  return { ok: false, error: { status, code, message } };
}

/** The request belongs to another pool's coordinator; a host that routes pools forwards it there. */
export function wrongPool<T = never>(pool: string, message: string): Result<T> {
  return { ok: false, error: { status: 409, code: 'wrong_pool', message, pool } };
}

/** Constant-time comparison of two strings (hex digests), independent of where they differ. */
export function timingSafeEqualText(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

/** The last time formatted: a batch answer formats the same few milliseconds thousands of times. */
let lastMs = Number.NaN;
let lastIso = '';

export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

export function isoOrUndefined(ms: number | null | undefined): string | undefined {
  return ms === null || ms === undefined ? undefined : iso(ms);
}
