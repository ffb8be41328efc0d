import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_PREFIX, CreateJobRequest, type ApiError } from '@studio-worker/protocol';
import { bearerToken, bufferedBody, MAX_JSON_BYTES, parseJsonBody, PROBLEMS } from './http-errors.ts';
import type { RouteDeps } from './routes/context.ts';

const PATH = `${API_PREFIX}/jobs`;

/**
 * `POST /graphics/api/jobs` answered by node:http directly, not through hono: the one request on the
 * dispatch-latency path (job created → offer received), where the adapter's request and response
 * objects and the middleware chain cost about 35 µs of the ≈ 200 the studio spends. Same checks in
 * the same order as the hono route (body limit 413, admin token 401, JSON 415/400, then the job:
 * the answers come from http-errors.ts, and the HTTP API tests run against this path), the same
 * commit before the answer. Answers false for any other request (hono takes it).
 */
export function createJobFastPath(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || (req.url !== PATH && req.url !== `${PATH}/`)) return false;
    void handle(deps, req, res).catch((error: unknown) => {
      deps.log.error({ op: 'http', path: PATH, err: (error as Error).message, stack: (error as Error).stack }, 'request failed');
      answer(res, 500, { error: 'internal_error', message: 'the studio failed to handle this request; see its log' });
    });
    return true;
  };
}

async function handle(deps: RouteDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && req.headers['transfer-encoding'] === undefined && Number(declared) > MAX_JSON_BYTES) return problem(res, PROBLEMS.tooLarge);
  if (!deps.core.admin.verify(bearerToken(req.headers.authorization))) return problem(res, PROBLEMS.unauthorized);
  let tooLarge = false;
  const body = await parseJsonBody(req.headers['content-type'] ?? '', async () => (await bufferedBody(req)) ?? readStream(req, () => (tooLarge = true)), CreateJobRequest);
  if (tooLarge) return problem(res, PROBLEMS.tooLarge);
  if (!body.ok) return problem(res, body.problem);
  const created = deps.core.jobs.create(body.value);
  // Commit (and so release the offer to its worker) before the answer is built.
  deps.commit();
  if (!created.ok) return answer(res, created.error.status, { error: created.error.code, message: created.error.message });
  answer(res, 201, created.value);
}

/** A body without a usable content-length (chunked, or not all there yet), with the same cap. */
function readStream(req: IncomingMessage, overflow: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > MAX_JSON_BYTES) return; // the rest is read and dropped; the 413 is on its way
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        overflow();
        resolve('');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function problem(res: ServerResponse, p: { status: number; code: string; message: string }): void {
  const body: ApiError = { error: p.code, message: p.message };
  answer(res, p.status, body);
}

function answer(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
