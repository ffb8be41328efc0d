import { createHash, type Hash } from 'node:crypto';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from '@studio-worker/log';
import { formatBytes, formatDuration } from './format.ts';
import { ModelFileFailure, httpStatusIsRetryable } from './failures.ts';
import { hashInto } from './hash.ts';
import type { TransferProgress } from './progress.ts';
import { checkDownloadUrl, displayUrl } from '../platform/url-policy.ts';
import { sleepOrAbort } from '../platform/sleep.ts';

/** What to fetch and where to put it. */
export interface DownloadSpec {
  /** The registry's source URL (already checked with `checkDownloadUrl`). */
  url: string;
  /** `<dest>.part`; an existing one is resumed. */
  partPath: string;
  /** Lowercase hex, when the registry pins one. */
  sha256?: string;
  approxBytes?: number;
}

export interface DownloadEnv {
  fetch: typeof fetch;
  userAgent: string;
  allowLoopbackHttp: boolean;
  /** No bytes (or no response) for this long ends the attempt as a network error. */
  idleTimeoutMs: number;
  /** One request may take at most this long; a download cut by it resumes like any interruption. */
  requestTimeoutMs: number;
  /** Interruptions that still moved bytes are resumed in place this many times before the call fails. */
  autoResumes: number;
  resumeDelayMs: number;
  log: Logger;
}

export interface DownloadOutcome {
  size: number;
  sha256: string;
}

/** Size check when neither a sha256 nor a server length is there: approxBytes is a registry estimate. */
export const APPROX_TOLERANCE = 0.1;
const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Restarts from zero (bad Content-Range, 416) in one call; more means the server's Range support is broken. */
const MAX_CLEAN_RESTARTS = 2;

type AttemptResult =
  | { type: 'complete'; size: number; sha256: string; resumedFrom: number }
  | { type: 'restart'; why: string }
  | { type: 'failed'; failure: ModelFileFailure; progressed: boolean };

/**
 * Download `spec.url` into `spec.partPath`, resuming a part that is there, and verify it: the body
 * length against what the server announced, the sha256 when pinned, else a loose size check against
 * approxBytes (see `checkLengths`). Resolves with the verified part's size and sha256; the caller
 * renames it into place. Throws a ModelFileFailure; on a mismatch the part is gone, on an
 * interruption or abort it stays for the next call to resume.
 */
export async function downloadToPart(spec: DownloadSpec, env: DownloadEnv, signal: AbortSignal, onProgress: (update: TransferProgress) => void): Promise<DownloadOutcome> {
  let autoResumesLeft = env.autoResumes;
  let cleanRestarts = 0;
  let freshRetryAfterMismatch = false;
  const log = env.log;
  for (;;) {
    const result = await attempt(spec, env, signal, onProgress);
    if (result.type === 'complete') {
      if (spec.sha256 === undefined || result.sha256 === spec.sha256) return { size: result.size, sha256: result.sha256 };
      await rm(spec.partPath, { force: true });
      if (result.resumedFrom > 0 && !freshRetryAfterMismatch) {
        // The prefix came from an earlier attempt, maybe of another version of the file at this URL.
        // One clean download tells a stale prefix from a wrong pin; more would be a retry loop.
        freshRetryAfterMismatch = true;
        log.warn({ op: 'model_download', url: displayUrl(spec.url), resumedFrom: result.resumedFrom }, 'sha256 mismatch after a resumed download; downloading once more from zero');
        continue;
      }
      throw new ModelFileFailure(
        'checksum',
        `${displayUrl(spec.url)} has sha256 ${result.sha256}, but the registry pins ${spec.sha256} (${formatBytes(result.size)} received in full); the URL serves a different file or the pinned sha256 is wrong — fix the model entry in the studio registry`,
        { retryable: false },
      );
    }
    if (result.type === 'restart') {
      cleanRestarts++;
      await rm(spec.partPath, { force: true });
      if (cleanRestarts > MAX_CLEAN_RESTARTS) {
        throw new ModelFileFailure('network', `${displayUrl(spec.url)}: gave up after ${MAX_CLEAN_RESTARTS} restarts (${result.why})`, { retryable: true });
      }
      log.warn({ op: 'model_download', url: displayUrl(spec.url) }, `${result.why}; discarding the partial file and downloading from zero`);
      continue;
    }
    const { failure } = result;
    if (failure.kind === 'network' && result.progressed && autoResumesLeft > 0 && !signal.aborted) {
      autoResumesLeft--;
      log.warn({ op: 'model_download', url: displayUrl(spec.url), resumesLeft: autoResumesLeft }, `${failure.message}; resuming`);
      try {
        await sleepOrAbort(env.resumeDelayMs, signal);
      } catch {
        throw cancelled(spec.url, signal);
      }
      continue;
    }
    throw failure;
  }
}

async function attempt(spec: DownloadSpec, env: DownloadEnv, signal: AbortSignal, onProgress: (update: TransferProgress) => void): Promise<AttemptResult> {
  let offset = await sizeOf(spec.partPath);
  let hash: Hash = createHash('sha256');
  if (offset > 0) {
    // Hash the prefix before asking for the rest, so the server connection never waits on our disk.
    try {
      offset = await hashInto(hash, spec.partPath, { signal, length: offset, onBytes: (done) => onProgress({ stage: 'checking', done, total: spec.approxBytes }) });
    } catch (error) {
      if (signal.aborted) return failed(cancelled(spec.url, signal));
      return failed(new ModelFileFailure('local_io', `reading the partial download ${spec.partPath} failed: ${errorText(error)}`, { retryable: true, cause: error }));
    }
  }

  const stop = new AttemptStop(signal, env);
  try {
    let response: Response;
    try {
      response = await request(spec.url, offset, env, stop.signal);
    } catch (error) {
      if (error instanceof ModelFileFailure) return failed(error);
      return failed(stop.failure(spec.url, error, offset, 0));
    }
    stop.touch();

    let expectedBody: number | undefined;
    let total: number | undefined;
    let append = false;
    /** The whole file's size per Content-Range (206 only). */
    let rangeTotal: number | undefined;
    const contentLength = announcedLength(response);

    if (response.status === 416 && offset > 0) {
      await discard(response);
      return { type: 'restart', why: `the server answered 416 to Range bytes=${offset}-` };
    }
    if (response.status === 206) {
      const range = parseContentRange(response.headers.get('content-range'));
      if (!range || range.start !== offset) {
        await discard(response);
        const why = `the server answered Range bytes=${offset}- with Content-Range "${response.headers.get('content-range') ?? '(none)'}"`;
        if (offset === 0) return failed(new ModelFileFailure('http', `${displayUrl(spec.url)}: ${why}`, { retryable: true, httpStatus: 206 }));
        return { type: 'restart', why };
      }
      expectedBody = range.end - range.start + 1;
      total = range.total ?? range.end + 1;
      rangeTotal = range.total;
      if (contentLength !== undefined && contentLength !== expectedBody) {
        await discard(response);
        await rm(spec.partPath, { force: true });
        return failed(
          new ModelFileFailure('length_mismatch', `${displayUrl(spec.url)}: Content-Length ${contentLength} does not match Content-Range bytes ${range.start}-${range.end} (${expectedBody} bytes); the partial file was discarded`, { retryable: true }),
        );
      }
      append = true;
    } else if (response.status === 200) {
      if (offset > 0) {
        env.log.info({ op: 'model_download', url: displayUrl(spec.url), offset }, 'the server ignored Range; downloading from zero');
        offset = 0;
        hash = createHash('sha256');
      }
      expectedBody = contentLength;
      total = contentLength;
    } else {
      await discard(response);
      return failed(httpFailure(spec.url, response));
    }
    total ??= spec.approxBytes !== undefined && spec.approxBytes > 0 ? spec.approxBytes : undefined;

    // Stream the body: hash, then write, one chunk at a time, so hash and file always agree.
    let file: FileHandle;
    try {
      file = await open(spec.partPath, append ? 'a' : 'w');
    } catch (error) {
      await discard(response);
      return failed(localFailure(spec.partPath, error));
    }
    let received = 0;
    const startedAt = performance.now();
    try {
      const reader = response.body?.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;
        try {
          if (!reader) break;
          chunk = await reader.read();
        } catch (error) {
          return failed(stop.failure(spec.url, error, offset + received, total), received > 0);
        }
        if (chunk.done) break;
        stop.touch();
        hash.update(chunk.value);
        try {
          await writeAll(file, chunk.value);
        } catch (error) {
          await reader?.cancel().catch(() => {});
          return failed(localFailure(spec.partPath, error));
        }
        received += chunk.value.byteLength;
        const seconds = (performance.now() - startedAt) / 1000;
        onProgress({ stage: 'downloading', done: offset + received, total, bytesPerSecond: seconds > 0 ? received / seconds : undefined });
      }
      await file.sync();
    } catch (error) {
      return failed(localFailure(spec.partPath, error));
    } finally {
      await file.close().catch(() => {});
    }

    const size = offset + received;
    const lengthProblem = checkLengths({ received, expectedBody, size, expectedSize: rangeTotal, sha256: spec.sha256, approxBytes: spec.approxBytes });
    if (lengthProblem) {
      await rm(spec.partPath, { force: true });
      return failed(new ModelFileFailure('length_mismatch', `${displayUrl(spec.url)}: ${lengthProblem}; the partial file was discarded`, { retryable: true }));
    }
    return { type: 'complete', size, sha256: hash.digest('hex'), resumedFrom: offset };
  } finally {
    stop.dispose();
  }
}

/**
 * The length rules. The body must be exactly what the server announced (Content-Length, or the
 * Content-Range span for a 206), and a resumed file must add up to the Content-Range total. Only when the server announced nothing (chunked) and no sha256 is
 * pinned do we fall back on approxBytes — and since it is an estimate (often rounded), the final
 * size only has to be within ±10 % of it. That still catches what matters: an HTML error page
 * served with 200, or a body cut in half. With a pinned sha256 the hash decides and approxBytes is
 * never used to reject.
 */
export function checkLengths(facts: {
  received: number;
  expectedBody: number | undefined;
  size: number;
  /** The file size a 206's Content-Range gave, if any. */
  expectedSize?: number | undefined;
  sha256: string | undefined;
  approxBytes: number | undefined;
}): string | undefined {
  if (facts.expectedBody !== undefined) {
    if (facts.received !== facts.expectedBody) return `received ${facts.received} bytes, but the server announced ${facts.expectedBody}`;
    if (facts.expectedSize !== undefined && facts.size !== facts.expectedSize) return `the resumed file is ${facts.size} bytes, but the server says the file has ${facts.expectedSize}`;
    return undefined;
  }
  if (facts.sha256 !== undefined || facts.approxBytes === undefined || facts.approxBytes <= 0) return undefined;
  const low = facts.approxBytes * (1 - APPROX_TOLERANCE);
  const high = facts.approxBytes * (1 + APPROX_TOLERANCE);
  if (facts.size >= low && facts.size <= high) return undefined;
  return `the server sent no length, and the file is ${formatBytes(facts.size)} (${facts.size} bytes) where the registry expects about ${formatBytes(facts.approxBytes)}`;
}

/** GET with redirects followed by hand, so every hop is checked (https only) before it is requested. */
async function request(sourceUrl: string, offset: number, env: DownloadEnv, signal: AbortSignal): Promise<Response> {
  let current = sourceUrl;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const check = checkDownloadUrl(current, env.allowLoopbackHttp);
    if (!check.ok) {
      // Only a redirect target can fail here: the source itself was checked before we got this far.
      throw new ModelFileFailure('http', `${displayUrl(sourceUrl)} redirected to a URL that is refused: ${check.problem}`, { retryable: false, httpStatus: 302 });
    }
    const headers: Record<string, string> = { 'user-agent': env.userAgent, 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const response = await env.fetch(check.url, { headers, redirect: 'manual', signal });
    if (!REDIRECT_STATUSES.has(response.status)) return response;
    await discard(response);
    const location = response.headers.get('location');
    if (!location) throw new ModelFileFailure('http', `${displayUrl(current)} answered ${response.status} without a Location header`, { retryable: true, httpStatus: response.status });
    current = new URL(location, current).href;
  }
  throw new ModelFileFailure('http', `${displayUrl(sourceUrl)} redirected more than ${MAX_REDIRECTS} times`, { retryable: false, httpStatus: 310 });
}

/**
 * Everything that ends one attempt from outside the byte stream: the caller's abort, no bytes for
 * `idleTimeoutMs`, and the whole-request deadline. The attempt's fetch listens to `signal`.
 */
class AttemptStop {
  readonly #controller = new AbortController();
  readonly #outer: AbortSignal;
  readonly #idleMs: number;
  readonly #requestMs: number;
  #why: 'idle' | 'deadline' | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #deadline: NodeJS.Timeout;
  readonly #onOuterAbort = () => this.#controller.abort(this.#outer.reason);

  constructor(outer: AbortSignal, env: Pick<DownloadEnv, 'idleTimeoutMs' | 'requestTimeoutMs'>) {
    this.#outer = outer;
    this.#idleMs = env.idleTimeoutMs;
    this.#requestMs = env.requestTimeoutMs;
    if (outer.aborted) this.#controller.abort(outer.reason);
    else outer.addEventListener('abort', this.#onOuterAbort, { once: true });
    this.#deadline = setTimeout(() => this.#stop('deadline'), env.requestTimeoutMs);
    this.touch();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Bytes (or headers) arrived: the idle clock starts over. */
  touch(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.#stop('idle'), this.#idleMs);
  }

  /** The failure for an error the fetch or the body stream threw, read in the light of why we stopped it. */
  failure(url: string, error: unknown, done: number, total: number | undefined): ModelFileFailure {
    if (this.#outer.aborted) return cancelled(url, this.#outer);
    const at = total === undefined ? `after ${formatBytes(done)}` : `at ${formatBytes(done)} of ${formatBytes(total)}`;
    if (this.#why === 'idle') return new ModelFileFailure('network', `${displayUrl(url)}: no data for ${formatDuration(this.#idleMs)} ${at}`, { retryable: true, cause: error });
    if (this.#why === 'deadline') return new ModelFileFailure('network', `${displayUrl(url)}: the request took longer than ${formatDuration(this.#requestMs)} ${at}`, { retryable: true, cause: error });
    return new ModelFileFailure('network', `${displayUrl(url)}: ${networkErrorText(error)} ${at}`, { retryable: true, cause: error });
  }

  dispose(): void {
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#deadline);
    this.#outer.removeEventListener('abort', this.#onOuterAbort);
  }

  #stop(why: 'idle' | 'deadline'): void {
    this.#why ??= why;
    this.#controller.abort(new Error(why === 'idle' ? 'no data' : 'request deadline'));
  }
}

export function cancelled(url: string, signal: AbortSignal): ModelFileFailure {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new ModelFileFailure('cancelled', `download of ${displayUrl(url)} stopped (${reason}); the partial file is kept and the next attempt resumes it`, { retryable: false, cause: signal.reason });
}

function failed(failure: ModelFileFailure, progressed = false): AttemptResult {
  return { type: 'failed', failure, progressed };
}

function httpFailure(url: string, response: Response): ModelFileFailure {
  const status = response.status;
  const text = response.statusText ? ` ${response.statusText}` : '';
  const retryable = httpStatusIsRetryable(status);
  const hint =
    status === 401 || status === 403
      ? '; the file may be gated or private — use a public mirror'
      : status === 404
        ? '; check the model URL in the studio registry'
        : status === 451
          ? '; the file is blocked for legal reasons in this region — use another mirror'
          : '';
  return new ModelFileFailure('http', `GET ${displayUrl(url)} answered ${status}${text}${hint}`, { retryable, httpStatus: status });
}

function localFailure(path: string, error: unknown): ModelFileFailure {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const what = code === 'ENOSPC' ? 'the disk is full' : errorText(error);
  return new ModelFileFailure('local_io', `writing ${path} failed: ${what}; the partial file is kept for a resume`, { retryable: true, cause: error });
}

function networkErrorText(error: unknown): string {
  // undici reports a dropped connection as TypeError("terminated") with the socket error as cause.
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const causeText = cause instanceof Error ? cause.message : undefined;
  const base = errorText(error);
  if (base === 'terminated' || base === 'fetch failed') return `connection failed: ${causeText ?? base}`;
  return causeText ? `${base} (${causeText})` : base;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The body length the server announced, when it is comparable with the bytes we read. */
function announcedLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding');
  // A content-coded body is decoded by fetch, so Content-Length counts other bytes than we see.
  if (encoding !== null && encoding.toLowerCase() !== 'identity') return undefined;
  const header = response.headers.get('content-length');
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

/** `bytes 100-199/1000` → {start:100, end:199, total:1000}; `bytes 100-199/*` → total undefined. */
export function parseContentRange(header: string | null): { start: number; end: number; total: number | undefined } | undefined {
  if (header === null) return undefined;
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header);
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const total = match[3] === '*' ? undefined : Number(match[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {});
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) {
    const { bytesWritten } = await file.write(bytes, written, bytes.byteLength - written);
    written += bytesWritten;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
