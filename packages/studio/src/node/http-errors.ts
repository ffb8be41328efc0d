import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { describeIssues, type ApiError } from '@studio-worker/protocol';
import type { z } from 'zod';
import type { Result, StudioError } from '../core/index.ts';

/** Every error answer: `{error: <code>, message: <what to fix>}` with a fitting status. */
export function errorResponse(c: Context, status: StudioError['status'], code: string, message: string): Response {
  const body: ApiError = { error: code, message };
  return c.json(body, status as ContentfulStatusCode);
}

export function fromError(c: Context, error: StudioError): Response {
  return errorResponse(c, error.status, error.code, error.message);
}

/** Answer a service result: its value as JSON, or its error. */
export function respond<T>(c: Context, result: Result<T>, status: ContentfulStatusCode = 200): Response {
  return result.ok ? c.json(result.value as object, status) : fromError(c, result.error);
}

/** An error answer before any route logic ran: the same status, code and text on every path. */
export interface HttpProblem {
  status: 400 | 401 | 413 | 415;
  code: string;
  message: string;
}

/** JSON request bodies are small; the multipart upload route streams and sets its own limit. */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;

export const PROBLEMS = {
  unauthorized: {
    status: 401,
    code: 'unauthorized',
    message: 'send the admin token as "Authorization: Bearer <token>" (printed when the studio first started, or set STUDIO_ADMIN_TOKEN)',
  },
  tooLarge: { status: 413, code: 'too_large', message: 'the request body is larger than 4 MiB; send fewer jobs per batch' },
  notJson: { status: 415, code: 'unsupported_media_type', message: 'send the body as JSON with "Content-Type: application/json"' },
  invalidJson: { status: 400, code: 'invalid_json', message: 'the body is not valid JSON' },
} as const satisfies Record<string, HttpProblem>;

/**
 * Check and parse a JSON body. Wrong content type → 415, unparseable → 400, invalid → 400 with the
 * fields named. `readText` is only called when the content type is right.
 */
export async function parseJsonBody<S extends z.ZodType>(
  contentType: string,
  readText: () => Promise<string>,
  schema: S,
): Promise<{ ok: true; value: z.infer<S> } | { ok: false; problem: HttpProblem }> {
  if (!contentType.toLowerCase().startsWith('application/json')) return { ok: false, problem: PROBLEMS.notJson };
  let raw: unknown;
  try {
    raw = JSON.parse(await readText());
  } catch {
    return { ok: false, problem: PROBLEMS.invalidJson };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, problem: { status: 400, code: 'invalid_request', message: describeIssues(parsed.error) } };
  return { ok: true, value: parsed.data };
}

/** Read and validate a JSON body (see parseJsonBody); answers the value or the error response to return. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<{ ok: true; value: z.infer<S> } | { ok: false; response: Response }> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const parsed = await parseJsonBody(c.req.header('content-type') ?? '', async () => (incoming && (await bufferedBody(incoming))) ?? c.req.text(), schema);
  return parsed.ok ? parsed : { ok: false, response: errorResponse(c, parsed.problem.status, parsed.problem.code, parsed.problem.message) };
}

/**
 * The body, when it is all in the request stream's buffer (a small body arrives in the same packet
 * as the headers): read at once instead of through stream events, which cost about 50 µs per
 * request. Undefined when it is not all there (then it is read the usual way).
 */
export async function bufferedBody(incoming: IncomingMessage): Promise<string | undefined> {
  if (incoming.readableDidRead || incoming.headers['transfer-encoding'] !== undefined) return undefined;
  const declared = Number(incoming.headers['content-length']);
  if (!(declared > 0)) return undefined;
  // Routes run inside the 'request' event, before the parser pushed the rest of that packet: one
  // microtask later the body is there.
  if (incoming.readableLength < declared) await undefined;
  if (incoming.readableLength !== declared) return undefined;
  const body = incoming.read() as Buffer | null;
  return body === null ? undefined : body.toString('utf8');
}

export function bearer(c: Context): string | undefined {
  return bearerToken(c.req.header('authorization'));
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}
