import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { Hono } from 'hono';
import { API_PREFIX, RESULT_FILE_FIELD, ResultExt } from '@studio-worker/protocol';
import { nodeCrypto } from '../crypto.ts';
import { timingSafeEqualText } from '../../core/index.ts';
import { bearer, errorResponse, fromError } from '../http-errors.ts';
import type { Env, RouteDeps } from './context.ts';

interface ParsedUpload {
  fields: Map<string, string>;
  /** The `image` part, streamed to this file; undefined if the part was missing. */
  incoming?: string;
  fileName?: string;
  bytes: number;
}

class UploadError extends Error {
  readonly status: 400 | 413 | 500;
  readonly code: string;
  constructor(status: 400 | 413 | 500, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * `POST /graphics/api/workers/:id/jobs/:jobId/complete`: a binary result as multipart fields
 * `prompt`, `ext`, `attempt` (ours) and the file part `image`. The file streams to disk (the
 * studio's memory does not grow with it), and becomes the job's result only if this worker still
 * holds that attempt; otherwise it is deleted and the answer is 409. Nothing half-written stays.
 */
const UPLOAD_PATH = new RegExp(`^${API_PREFIX}/workers/[^/]+/jobs/[^/]+/complete$`);

/** Exactly the result upload (POST, the full path): the one route exempt from the JSON body cap. */
export function isUploadRoute(method: string, path: string): boolean {
  return method === 'POST' && UPLOAD_PATH.test(path);
}

export function uploadRoutes(deps: RouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  const { dispatcher } = deps.core;

  app.post('/workers/:id/jobs/:jobId/complete', async (c) => {
    const workerId = c.req.param('id');
    const jobId = c.req.param('jobId');
    const worker = dispatcher.workers.get(workerId);
    const token = bearer(c);
    if (!worker || worker.deleted_at !== null || !token || !worker.token_hash || !timingSafeEqualText(nodeCrypto.sha256Hex(token), worker.token_hash)) {
      return errorResponse(c, 401, 'auth_failed', `worker ${workerId} is unknown or the bearer token is wrong`);
    }
    const type = c.req.header('content-type') ?? '';
    if (!type.toLowerCase().startsWith('multipart/form-data')) {
      return errorResponse(c, 415, 'unsupported_media_type', `send the result as multipart/form-data with fields prompt, ext and the file part "${RESULT_FILE_FIELD}"`);
    }
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > deps.limits.maxUploadBytes + 64 * 1024) {
      return errorResponse(c, 413, 'too_large', `the upload is ${declared} bytes; the studio accepts results up to ${deps.limits.maxUploadBytes} bytes`);
    }
    // Refuse before reading the body when the claim is already gone.
    const early = dispatcher.checkUpload(workerId, jobId, undefined);
    if (!early.ok) return fromError(c, early.error);

    let upload: ParsedUpload;
    try {
      upload = await parseMultipart(c.env.incoming, deps);
    } catch (error) {
      if (error instanceof UploadError) {
        if (error.status === 500) deps.log.error({ op: 'upload', workerId, jobId, err: error.message }, 'could not store an upload');
        return errorResponse(c, error.status, error.code, error.message);
      }
      deps.log.warn({ op: 'upload', workerId, jobId, err: (error as Error).message }, 'upload stream failed');
      return errorResponse(c, 400, 'bad_upload', `the upload could not be read: ${(error as Error).message}`);
    }

    const incoming = upload.incoming;
    const fail = (status: 400, code: string, message: string) => {
      if (incoming) deps.assets.discard(incoming);
      return errorResponse(c, status, code, message);
    };
    if (!incoming) return fail(400, 'missing_file', `the multipart field "${RESULT_FILE_FIELD}" (the result file) is missing`);
    if (upload.bytes === 0) return fail(400, 'empty_file', 'the result file is empty');
    const ext = (upload.fields.get('ext') ?? upload.fileName?.split('.').pop() ?? '').toLowerCase();
    if (!ResultExt.safeParse(ext).success) return fail(400, 'invalid_ext', `"ext" must be a short lowercase file extension such as "png" (got "${ext.slice(0, 20)}")`);
    const attemptField = upload.fields.get('attempt');
    const attempt = attemptField === undefined ? undefined : Number(attemptField);
    if (attempt !== undefined && !(Number.isInteger(attempt) && attempt > 0)) return fail(400, 'invalid_attempt', '"attempt" must be a positive whole number');

    const check = dispatcher.checkUpload(workerId, jobId, attempt);
    if (!check.ok) {
      deps.assets.discard(incoming);
      return fromError(c, check.error);
    }
    const fileName = deps.assets.fileName(jobId, check.value.attempt, ext);
    deps.assets.commit(incoming, fileName);
    const done = dispatcher.completeFile(workerId, jobId, attempt, { fileName, ext, bytes: upload.bytes });
    if (!done.ok) {
      deps.assets.remove(fileName);
      return fromError(c, done.error);
    }
    deps.log.info({ op: 'upload', workerId, jobId, attempt: done.value.attempt, bytes: upload.bytes, ext }, 'result stored');
    return c.json({ ok: true, jobId, attempt: done.value.attempt, bytes: upload.bytes });
  });

  return app;
}

/** Errors of the disk, not of the client: the upload is refused with a typed 500 that says so. */
function storageError(error: NodeJS.ErrnoException): UploadError {
  return new UploadError(500, 'storage_failed', `the studio could not store the upload (${error.code ?? error.message}); its data directory is full, unwritable or out of file handles — the worker will retry`);
}

/**
 * Stream the multipart body: fields into memory (bounded by busboy's limits), the file part into a
 * `.part` file. Every way out — done, malformed, too large, the client gone mid-body, the disk
 * refusing the file — ends the same way: the streams are destroyed, the file handle is closed,
 * and unless the upload is complete the `.part` is deleted; the promise settles exactly once.
 */
function parseMultipart(request: IncomingMessage, deps: RouteDeps): Promise<ParsedUpload> {
  return new Promise((resolve, reject) => {
    const result: ParsedUpload = { fields: new Map(), bytes: 0 };
    let problem: Error | undefined;
    let settled = false;
    let file: Readable | undefined;
    let out: WriteStream | undefined;
    /** Settles (never rejects) once the file part is written and its handle is closed. */
    let written: Promise<unknown> = Promise.resolve();

    const finish = () => {
      if (settled) return;
      settled = true;
      request.off('close', onClose);
      void written.then(() => {
        if (!problem) return resolve(result);
        if (result.incoming) deps.assets.discard(result.incoming);
        reject(problem);
      }, reject);
    };
    const abort = (error: Error) => {
      problem ??= error;
      request.unpipe(parser);
      // What is left of the body is read and dropped, so the answer can still be sent.
      request.resume();
      file?.destroy();
      out?.destroy();
      finish();
    };
    const onClose = () => {
      if (!request.complete) abort(new UploadError(400, 'bad_upload', 'the upload was aborted before its end'));
    };

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: request.headers,
        limits: { fileSize: deps.limits.maxUploadBytes, files: 1, fields: 20, fieldSize: 1024 * 1024, parts: 30 },
      });
    } catch (error) {
      return reject(new UploadError(400, 'bad_upload', `not a readable multipart body: ${(error as Error).message}`));
    }
    parser.on('field', (name, value) => result.fields.set(name, value));
    parser.on('file', (name, stream, info) => {
      if (name !== RESULT_FILE_FIELD || result.incoming || settled) {
        stream.resume();
        return;
      }
      const path = deps.assets.incomingPath(`${randomBytes(8).toString('hex')}.part`);
      result.incoming = path;
      result.fileName = info.filename;
      file = stream;
      // 'wx': never write through a name that already exists.
      out = createWriteStream(path, { flags: 'wx' });
      const target = out;
      target.on('error', (error: NodeJS.ErrnoException) => abort(storageError(error)));
      stream.on('data', (chunk: Buffer) => {
        result.bytes += chunk.length;
      });
      stream.on('limit', () => {
        problem ??= new UploadError(413, 'too_large', `the result file is larger than ${deps.limits.maxUploadBytes} bytes, the most the studio accepts`);
      });
      written = Promise.all([
        pipeline(stream, target).catch((error: Error) => {
          problem ??= new UploadError(400, 'bad_upload', `the result file could not be read: ${error.message}`);
        }),
        // The handle is closed only after 'close'; the .part may be deleted then, not before.
        new Promise<void>((done) => target.once('close', () => done())),
      ]);
    });
    parser.on('error', (error: Error) => abort(new UploadError(400, 'bad_upload', `the multipart body is malformed: ${error.message}`)));
    parser.on('close', finish);
    request.on('close', onClose);
    request.on('error', (error) => abort(new UploadError(400, 'bad_upload', `the upload failed: ${error.message}`)));
    request.pipe(parser);
  });
}
