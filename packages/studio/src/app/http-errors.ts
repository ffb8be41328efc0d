import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { describeIssues, type ApiError } from '@studio-worker/protocol';
import type { z } from 'zod';
import type { Result, StudioError } from '../core/index.ts';
import { DEFAULT_HOST_LIMITS, jsonDepthExceeds } from './limits.ts';
import type { AppVariables } from './host.ts';

/** Every error answer: `{error: <code>, message: <what to fix>}` with a fitting status. */
export function errorResponse(c: Context, status: StudioError['status'], code: string, message: string): Response {
  const body: ApiError = { error: code, message };
  return c.json(body, status as ContentfulStatusCode);
}

/**
 * A pooled core's `wrong_pool` refusal names the pool the request belongs to in this header too, so
 * a router (the Cloudflare Worker) forwards it there without reading the body.
 */
export const POOL_REDIRECT_HEADER = 'x-studio-pool-redirect';

export function fromError(c: Context, error: StudioError): Response {
  if (error.pool !== undefined) c.header(POOL_REDIRECT_HEADER, error.pool);
  return errorResponse(c, error.status, error.code, error.message);
}

/** Answer a service result: its value as JSON, or its error. */
export function respond<T>(c: Context, result: Result<T>, status: ContentfulStatusCode = 200): Response {
  return result.ok ? c.json(result.value as object, status) : fromError(c, result.error);
}

export type Checked<T> = { ok: true; value: T } | { ok: false; response: Response };

/**
 * A whole-number query parameter from `min` to `max`, or `fallback` when absent. Anything else
 * (`abc`, `2.5`, `1e999`, out of range) → 400 naming the parameter and what it takes.
 */
export function queryInt(c: Context, name: string, range: { min: number; max: number; fallback?: number; hint?: string }): Checked<number | undefined> {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return { ok: true, value: range.fallback };
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= range.min && n <= range.max)) {
    return { ok: false, response: errorResponse(c, 400, 'invalid_request', `${name} must be a whole number from ${range.min} to ${range.max}${range.hint ? ` (${range.hint})` : ''} (got "${raw.slice(0, 40)}")`) };
  }
  return { ok: true, value: n };
}

/**
 * Read and validate a JSON body. Wrong content type → 415, unparseable → 400, nested deeper than
 * the limit → 400, invalid → 400 with the fields named. Answers either the parsed value or the
 * error response to return.
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<Checked<z.infer<S>>> {
  const type = c.req.header('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/json')) {
    return { ok: false, response: errorResponse(c, 415, 'unsupported_media_type', 'send the body as JSON with "Content-Type: application/json"') };
  }
  const vars = c.var as Partial<AppVariables>;
  let text: string;
  try {
    text = (await vars.host?.bufferedBody?.(c)) ?? (await c.req.text());
  } catch {
    return { ok: false, response: errorResponse(c, 400, 'invalid_json', INVALID_JSON) };
  }
  // The app puts its limit on every request's context (HostLimits.maxJsonDepth).
  const checked = checkJsonText(text, schema, vars.maxJsonDepth ?? DEFAULT_HOST_LIMITS.maxJsonDepth);
  return checked.ok ? checked : { ok: false, response: errorResponse(c, 400, checked.code, checked.message) };
}

const INVALID_JSON = 'the body is not valid JSON';

/**
 * A JSON body's text checked: parsed, nested no deeper than `maxDepth`, valid for `schema`. The one
 * check of every JSON body, readJson's and the Node host's create fast path's (which hands anything
 * but a valid body to the app, whose readJson then answers it).
 */
export function checkJsonText<S extends z.ZodType>(
  text: string,
  schema: S,
  maxDepth: number,
): { ok: true; value: z.infer<S> } | { ok: false; code: 'invalid_json' | 'too_deep' | 'invalid_request'; message: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_json', message: INVALID_JSON };
  }
  if (jsonDepthExceeds(raw, maxDepth)) {
    return { ok: false, code: 'too_deep', message: `the JSON body nests arrays and objects deeper than ${maxDepth} levels; flatten it` };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, code: 'invalid_request', message: describeIssues(parsed.error) };
  return { ok: true, value: parsed.data };
}

export function bearer(c: Context): string | undefined {
  return bearerToken(c.req.header('authorization'));
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}
