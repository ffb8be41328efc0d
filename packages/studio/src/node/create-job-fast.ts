import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_PREFIX, CreateJobRequest } from '@studio-worker/protocol';
import type { StudioCore } from '../core/index.ts';
import { bearerToken, checkJsonText } from '../app/http-errors.ts';
import type { HostLimits } from '../app/limits.ts';

const PATH = `${API_PREFIX}/jobs`;
/**
 * The Host values @hono/node-server (2.1.8, src/url.ts `reValidHost`) builds the request's URL from
 * without a closer look. Any other goes to the app: the adapter answers a bad one 400 (`a/b`, `a b`)
 * and checks an unusual good one (`[::1]:8080`) through `new URL`.
 */
const PLAIN_HOST = /^[a-z0-9._-]+(?::(?:[1-5]\d{3,4}|[6-9]\d{3}))?$/;
/**
 * Loopback on a port from 60000 (reValidHost stops at 59999; Linux hands out ephemeral ports up to
 * 60999): `new URL` keeps these as they are, so the adapter takes them too.
 */
const LOOPBACK_HIGH_PORT = /^(?:127\.0\.0\.1|localhost):(?:6[0-4]\d{3}|65[0-4]\d\d|655[0-2]\d|6553[0-5])$/;

/** Bodies this path read and then handed to the app: the node host's `bufferedBody` answers them. */
export const handedOverBodies = new WeakMap<IncomingMessage, string>();

/**
 * `POST /graphics/api/jobs` (one job, the dispatch-latency path) created straight from node:http,
 * without the adapter's Request/Response objects, the middleware chain and the promise hops between
 * them: about 40 µs of the ~160 the studio spent between the request and the offer (bench/README.md).
 *
 * It answers only the request it can answer exactly as the app would: a well-formed create by a
 * caller whose token (one Authorization header) may create jobs, with a declared length, JSON
 * content type, a plain Host and no idempotency key. Anything else (an error of any kind, a key, a
 * chunked body) goes to the app, with the body already read handed over through `handedOverBodies`,
 * so every error answer still comes from the one place that makes them (app/routes/submit.ts).
 * packages/studio/test/node/create-job-fast.test.ts holds the two to the same answers: the same
 * header lines (but Date; Content-Length's place, see below) and bodies (but the job's id and times).
 *
 * Returns false when the request is not its to take (the caller passes it to the app at once).
 */
export function createJobFastPath(
  core: StudioCore,
  limits: Pick<HostLimits, 'maxJsonBytes' | 'maxJsonDepth'>,
  commit: () => void,
  app: (req: IncomingMessage, res: ServerResponse) => unknown,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== PATH) return false;
    const headers = req.headers;
    const declared = Number(headers['content-length']);
    if (
      !(declared > 0 && declared <= limits.maxJsonBytes) ||
      headers['transfer-encoding'] !== undefined ||
      headers['idempotency-key'] !== undefined ||
      !(headers['content-type'] ?? '').toLowerCase().startsWith('application/json') ||
      !(PLAIN_HOST.test(headers.host ?? '') || LOOPBACK_HIGH_PORT.test(headers.host ?? '')) ||
      !oneAuthorization(req.rawHeaders)
    ) {
      return false;
    }
    const caller = core.access.authenticate(bearerToken(headers.authorization));
    if (!caller || !core.access.authorize(caller, 'POST', '/jobs').ok) return false;

    // The body usually came in the same packet as the head: the parser pushes it right after this
    // 'request' event, within the same read, so the job is made in that same turn.
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < declared) return;
      req.off('data', onData);
      const text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8');
      let job: unknown;
      try {
        job = create(text);
      } catch {
        // The unit rolled back; the app runs it again and answers (app.onError logs it).
        job = undefined;
      }
      if (job === undefined) {
        handedOverBodies.set(req, text);
        void app(req, res);
        return;
      }
      // Durable first, so the offer leaves before the answer (as the app's route does).
      commit();
      // The app's header lines (@hono/node-server 2.1.8, writeDefaultHeaders), spelled as it does.
      // On HTTP/1.1 it has node append Content-Length last (through node's private _contentLength);
      // the same order by public means (statusCode, setHeader, end) costs ~9 µs a create, so the
      // length stands second here.
      const answer = JSON.stringify(job);
      res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(answer) });
      res.end(answer);
    };
    /** The new job's view, or undefined for anything the app must answer (nothing was written). */
    const create = (text: string): unknown => {
      const checked = checkJsonText(text, CreateJobRequest, limits.maxJsonDepth);
      if (!checked.ok) return undefined;
      // A refusal changed nothing (errors are values, decided before any write).
      const submitted = core.jobs.submit(caller.owner, [{ request: checked.value }]);
      return submitted.ok ? submitted.value.jobs[0] : undefined;
    };
    req.on('data', onData);
    return true;
  };
}

/**
 * Exactly one Authorization header. Node keeps the first of several (`req.headers`), the app's
 * Headers join them with ", ", which no bearer matches (401): the app answers those.
 */
function oneAuthorization(raw: string[]): boolean {
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 13 && name.toLowerCase() === 'authorization') seen++;
  }
  return seen === 1;
}
