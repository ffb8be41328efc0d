import { Hono } from 'hono';
import { API_PREFIX, RESULT_FILE_FIELD, ResultExt } from '@studio-worker/protocol';
import { workerTokenMatches } from '../../core/index.ts';
import { bearer, errorResponse, fromError } from '../http-errors.ts';
import type { ResultStore, StagedResult } from '../host.ts';
import { MultipartError, multipartBoundary, parseMultipart, type FileSink } from '../multipart.ts';
import type { Env, RouteDeps } from './context.ts';

interface ParsedUpload {
  fields: Map<string, string>;
  /** The `image` part, stored in full but not yet the result of anything; undefined if the part was missing. */
  staged?: StagedResult;
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
 * `prompt`, `ext`, `attempt` (ours) and the file part `image`. The file streams into the host's
 * ResultStore (the studio's memory does not grow with it), and becomes the job's result only if
 * this worker still holds that attempt; otherwise it is deleted and the answer is 409. Nothing
 * half-written stays.
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
    const worker = deps.core.stores.workers.get(workerId);
    if (!worker || worker.deleted_at !== null || !workerTokenMatches(deps.core.ports.crypto, worker, bearer(c))) {
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
    // The one check, before reading the body: refuse at once when the claim is already gone.
    const held = dispatcher.checkUpload(workerId, jobId, undefined);
    if (!held.ok) return fromError(c, held.error);

    let upload: ParsedUpload;
    try {
      upload = await receiveUpload(deps.host.requestBody?.(c) ?? c.req.raw.body, type, deps.host.results, { jobId, maxBytes: deps.limits.maxUploadBytes });
    } catch (error) {
      if (error instanceof UploadError) {
        if (error.status === 500) deps.log.error({ op: 'upload', workerId, jobId, err: error.message }, 'could not store an upload');
        return errorResponse(c, error.status, error.code, error.message);
      }
      deps.log.warn({ op: 'upload', workerId, jobId, err: (error as Error).message }, 'upload stream failed');
      return errorResponse(c, 400, 'bad_upload', `the upload could not be read: ${(error as Error).message}`);
    }

    const staged = upload.staged;
    const fail = async (status: 400, code: string, message: string) => {
      await staged?.discard();
      return errorResponse(c, status, code, message);
    };
    if (!staged) return fail(400, 'missing_file', `the multipart field "${RESULT_FILE_FIELD}" (the result file) is missing`);
    if (upload.bytes === 0) return fail(400, 'empty_file', 'the result file is empty');
    const ext = (upload.fields.get('ext') ?? upload.fileName?.split('.').pop() ?? '').toLowerCase();
    if (!ResultExt.safeParse(ext).success) return fail(400, 'invalid_ext', `"ext" must be a short lowercase file extension such as "png" (got "${ext.slice(0, 20)}")`);
    const attemptField = upload.fields.get('attempt');
    const attempt = attemptField === undefined ? undefined : Number(attemptField);
    if (attempt !== undefined && !(Number.isInteger(attempt) && attempt > 0)) return fail(400, 'invalid_attempt', '"attempt" must be a positive whole number');

    // The attempt the worker named (ours do) against the one found above; no second read.
    const check = dispatcher.checkUpload(workerId, jobId, attempt, held.value);
    if (!check.ok) {
      await staged.discard();
      return fromError(c, check.error);
    }
    let fileName: string;
    try {
      fileName = await staged.commit({ jobId, attempt: check.value.attempt, ext });
    } catch (error) {
      await staged.discard();
      deps.log.error({ op: 'upload', workerId, jobId, err: (error as Error).message }, 'could not store an upload');
      return errorResponse(c, 500, 'storage_failed', storageFailed(error).message);
    }
    // The claim may have ended while the file streamed in: completeFile's guarded statement says so,
    // and a refusal deletes the file.
    const done = dispatcher.completeFile(workerId, jobId, check.value.attempt, { fileName, ext, bytes: upload.bytes });
    if (!done.ok) {
      await deps.host.results.remove(fileName);
      return fromError(c, done.error);
    }
    deps.log.info({ op: 'upload', workerId, jobId, attempt: done.value.attempt, bytes: upload.bytes, ext }, 'result stored');
    return c.json({ ok: true, jobId, attempt: done.value.attempt, bytes: upload.bytes });
  });

  return app;
}

/** Errors of the storage, not of the client: the upload is refused with a typed 500 that says so. */
function storageFailed(error: unknown): UploadError {
  const e = error as { code?: string; message?: string };
  return new UploadError(500, 'storage_failed', `the studio could not store the upload (${e.code ?? e.message ?? String(error)}); its data directory is full, unwritable or out of file handles — the worker will retry`);
}

/**
 * Stream the multipart body (multipart.ts): fields into memory (bounded), the file part into the
 * store as it arrives. Every way out — done, malformed, too large, the client gone mid-body, the
 * store refusing the file — ends the same way: the file stream is closed or errored, the store's
 * `stage` has settled (so whatever it wrote is gone unless the upload is complete), and only then
 * does this answer.
 */
async function receiveUpload(body: ReadableStream<Uint8Array> | null, contentType: string, store: ResultStore, options: { jobId: string; maxBytes: number }): Promise<ParsedUpload> {
  const boundary = multipartBoundary(contentType);
  if (!boundary) throw new UploadError(400, 'bad_upload', 'not a readable multipart body: Multipart: Boundary not found');
  const result: ParsedUpload = { fields: new Map(), bytes: 0 };
  /** Our own reason to refuse, found while the body still arrives (too large). */
  let problem: UploadError | undefined;
  let file: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let staging: Promise<StagedResult> | undefined;
  /** Rejects when the store fails before the file ended, so a write never waits on a store that stopped reading. */
  let storeFailed: Promise<never> = new Promise(() => {});
  let sinkFailed = false;

  const tooLarge = () => new UploadError(413, 'too_large', `the result file is larger than ${options.maxBytes} bytes, the most the studio accepts`);
  const sink = (writer: WritableStreamDefaultWriter<Uint8Array>): FileSink => ({
    async write(chunk) {
      if (problem) return; // too large: the rest of the file is read and dropped
      result.bytes += chunk.length;
      if (result.bytes > options.maxBytes) {
        problem = tooLarge();
        await writer.abort(problem).catch(() => undefined);
        return;
      }
      try {
        await Promise.race([writer.write(chunk), storeFailed]);
      } catch (error) {
        sinkFailed = true;
        throw error;
      }
    },
    async end() {
      if (problem) return;
      try {
        await Promise.race([writer.close(), storeFailed]);
      } catch (error) {
        sinkFailed = true;
        throw error;
      }
    },
  });

  const reader = (body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })).getReader();
  let failure: UploadError | undefined;
  try {
    await parseMultipart(reader, boundary, {
      field: (name, value) => result.fields.set(name, value),
      file(name, filename) {
        if (name !== RESULT_FILE_FIELD || staging) return undefined;
        result.fileName = filename;
        const pipe = new TransformStream<Uint8Array, Uint8Array>();
        file = pipe.writable.getWriter();
        staging = store.stage(pipe.readable, options);
        storeFailed = staging.then(() => new Promise<never>(() => {}));
        // Settled below on every path; never an unhandled rejection meanwhile.
        staging.catch(() => undefined);
        storeFailed.catch(() => undefined);
        return sink(file);
      },
    });
  } catch (error) {
    if (problem) failure = problem;
    else if (sinkFailed) failure = storageFailed(await staging?.then(() => error, (reason: unknown) => reason));
    else if (error instanceof MultipartError) failure = new UploadError(400, 'bad_upload', `the multipart body is malformed: ${error.message}`);
    else failure = new UploadError(400, 'bad_upload', 'the upload was aborted before its end');
    // What is left of the body is not read here: the host drops it once the answer is out.
    reader.releaseLock();
  }
  failure ??= problem;
  if (failure) {
    // The file stream ends in an error, so the store removes what it wrote before `stage` settles.
    await file?.abort(failure).catch(() => undefined);
    const staged = await staging?.catch(() => undefined);
    await staged?.discard();
    throw failure;
  }
  if (!staging) return result;
  try {
    result.staged = await staging;
  } catch (error) {
    throw storageFailed(error);
  }
  return result;
}
