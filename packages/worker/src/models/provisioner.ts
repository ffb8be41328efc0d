import { mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ModelFile } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { isAtomicTempName, syncDir } from '../config/atomic-file.ts';
import type { EngineProgress, ResolvedModelFile } from '../engines/engine.ts';
import { cancelled, downloadToPart, type DownloadEnv } from './download.ts';
import { FailureCache, ModelFileFailure, isSourceFailure } from './failures.ts';
import { formatBytes } from './format.ts';
import { sha256OfFile } from './hash.ts';
import { PART_SUFFIX, VERIFIED_SUFFIX, filePathsFor, modelDirFor, modelIdProblem, plainFileNameProblem, verifiedRecordPath, type FilePaths } from './paths.ts';
import { ProgressThrottle, describeTransfer, type TransferProgress } from './progress.ts';
import { checkDownloadUrl, displayUrl } from '../platform/url-policy.ts';
import { readVerifiedRecord, recordMatches, writeVerifiedRecord } from './verified.ts';
import { byCodePoint } from '../platform/order.ts';

export interface ModelProvisionerOptions {
  modelsRoot: string;
  log: Logger;
  /** `studio-worker/<version>`. */
  userAgent: string;
  /** Injectable for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Free bytes on the filesystem holding `dir`; default `fs.statfs`. */
  freeBytes?: (dir: string) => Promise<number>;
  /** How long a failed source stays failed (default 10 min). */
  failureTtlMs?: number;
  /** Plain http to loopback hosts (tests, local mirrors; config `allow_loopback_http`); default false. Remote http is never allowed. */
  allowLoopbackHttp?: boolean;
  /** No bytes for this long ends an attempt as a network error (default 60 s). */
  idleTimeoutMs?: number;
  /** One request may last this long (default 30 min); a cut-off download resumes from where it was. */
  requestTimeoutMs?: number;
  /** Interruptions that moved bytes are resumed in place this many times per call (default 3). */
  autoResumes?: number;
  /** Pause before such a resume (default 1 s). */
  resumeDelayMs?: number;
  /** Clock for the failure cache and the progress throttle (tests). */
  now?: () => number;
}

export interface EnsureContext {
  signal: AbortSignal;
  progress: (update: EngineProgress) => void;
}

export interface ModelDirListing {
  /** Absolute path. Loose files at the top of models_root (the original's flat layout) are listed under models_root itself. */
  modelDir: string;
  files: Array<{ name: string; bytes: number }>;
}

const DEFAULT_FAILURE_TTL_MS = 10 * 60_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30 * 60_000;
const DEFAULT_AUTO_RESUMES = 3;
const DEFAULT_RESUME_DELAY_MS = 1000;
const PROGRESS_INTERVAL_MS = 250;
/** Free space asked for on top of the file: filesystems need slack, and approxBytes is an estimate. */
const DISK_HEADROOM = 1.1;
/** A verification record half written by an earlier version (`<file>.verified.<pid>.tmp`); now they are atomic-file temps. */
const RECORD_TEMP = /\.verified\.\d+\.tmp$/;

/** One file being provisioned, shared by every `ensure` that asks for it meanwhile. */
interface SharedProvision {
  modelDir: string;
  url: string;
  promise: Promise<string>;
  /** Aborted when the last waiter gives up, or on `remove`/`close`. */
  controller: AbortController;
  /** One entry per waiting call (objects, not the callbacks: two calls may pass the same function). */
  waiters: Set<{ progress: (update: EngineProgress) => void }>;
}

/**
 * Makes a model's files present and verified under `<models_root>/<sanitised model id>/`
 * (original-spec §3.4, lesson §10.11). A file counts as there only once verified — length, and the
 * sha256 when the registry pins one — and that fact is recorded next to it (`<file>.verified`), so
 * `isReady` answers without the network or re-hashing, and nothing advertises a model that is not
 * really on disk.
 */
export class ModelProvisioner {
  readonly #root: string;
  readonly #log: Logger;
  readonly #env: DownloadEnv;
  readonly #freeBytes: (dir: string) => Promise<number>;
  readonly #failures: FailureCache;
  readonly #now: () => number;
  readonly #allowLoopbackHttp: boolean;
  /** Keyed by destination path: concurrent asks for one file share one download. */
  readonly #inflight = new Map<string, SharedProvision>();
  /** Every provision not yet settled, including ones already abandoned by all callers (for `close`/`remove`). */
  readonly #running = new Set<SharedProvision>();
  /** Per model dir, the tail of a queue: one download at a time per model. */
  readonly #modelQueues = new Map<string, Promise<void>>();

  constructor(options: ModelProvisionerOptions) {
    this.#root = options.modelsRoot;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#allowLoopbackHttp = options.allowLoopbackHttp ?? false;
    this.#freeBytes = options.freeBytes ?? defaultFreeBytes;
    this.#failures = new FailureCache(options.failureTtlMs ?? DEFAULT_FAILURE_TTL_MS, this.#now);
    this.#env = {
      fetch: options.fetch ?? globalThis.fetch,
      userAgent: options.userAgent,
      allowLoopbackHttp: this.#allowLoopbackHttp,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      autoResumes: options.autoResumes ?? DEFAULT_AUTO_RESUMES,
      resumeDelayMs: options.resumeDelayMs ?? DEFAULT_RESUME_DELAY_MS,
      log: options.log,
    };
  }

  /** Make every file of a model present and verified; answers them as ResolvedModelFile in source order. */
  async ensure(modelId: string, files: readonly ModelFile[], ctx: EnsureContext): Promise<ResolvedModelFile[]> {
    // Every name is checked before any file is touched, so a bad entry never costs a download first.
    const idProblem = modelIdProblem(modelId);
    if (idProblem) throw new ModelFileFailure('bad_name', `model files cannot be stored: ${idProblem}`, { retryable: false });
    const seen = new Set<string>();
    for (const file of files) {
      const problem = plainFileNameProblem(file.filename);
      if (problem) throw new ModelFileFailure('bad_name', `model "${modelId}" lists the file name "${file.filename}", which is refused: ${problem}; file names must be plain names`, { retryable: false });
      if (seen.has(file.filename)) throw new ModelFileFailure('bad_name', `model "${modelId}" lists the file "${file.filename}" twice`, { retryable: false });
      seen.add(file.filename);
    }
    const resolved: ResolvedModelFile[] = [];
    for (const file of files) {
      if (ctx.signal.aborted) throw cancelled(file.url, ctx.signal);
      const path = await this.#ensureFile(modelId, file, ctx);
      resolved.push({ role: file.role, filename: file.filename, path, url: file.url });
    }
    return resolved;
  }

  /** Whether every file is already present and verified (no network, no hashing). For "advertise only verified models". */
  async isReady(modelId: string, files: readonly ModelFile[]): Promise<boolean> {
    if (modelIdProblem(modelId)) return false;
    for (const file of files) {
      if (plainFileNameProblem(file.filename)) return false;
      const paths = filePathsFor(this.#root, modelId, file.filename);
      if ((await this.#verifiedCopy(paths, file, { mayHash: false })) === undefined) return false;
    }
    return true;
  }

  /** Files on disk per model dir, with sizes. Partial downloads and verification records are left out. */
  async list(): Promise<ModelDirListing[]> {
    let entries;
    try {
      entries = await readdir(this.#root, { withFileTypes: true });
    } catch {
      return [];
    }
    const listings: ModelDirListing[] = [];
    const loose = await filesIn(this.#root, entries.filter((entry) => entry.isFile()).map((entry) => entry.name));
    if (loose.length > 0) listings.push({ modelDir: this.#root, files: loose });
    for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => byCodePoint(a.name, b.name))) {
      const dir = join(this.#root, entry.name);
      let names: string[];
      try {
        names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
      } catch {
        continue;
      }
      listings.push({ modelDir: dir, files: await filesIn(dir, names) });
    }
    return listings;
  }

  /**
   * Delete a model's directory (files, partial downloads, records). Downloads for it are stopped
   * first. Files at the legacy flat path are left alone: other models may use them.
   */
  async remove(modelId: string): Promise<void> {
    const idProblem = modelIdProblem(modelId);
    if (idProblem) throw new ModelFileFailure('bad_name', `cannot remove a model: ${idProblem}`, { retryable: false });
    const modelDir = modelDirFor(this.#root, modelId);
    await this.#stopAll((shared) => shared.modelDir === modelDir, 'model removed');
    await rm(modelDir, { recursive: true, force: true });
    this.#log.info({ op: 'model_remove', modelId, modelDir }, 'model files removed');
  }

  /** Stop every download (partial files stay for a resume) and wait until they have let go of their files. */
  async close(): Promise<void> {
    await this.#stopAll(() => true, 'model provisioner closed');
  }

  /** Forget cached source failures (one URL, or all), e.g. for an operator's explicit "pull again". */
  forgetFailures(url?: string): void {
    this.#failures.forget(url);
  }

  async #ensureFile(modelId: string, file: ModelFile, ctx: EnsureContext): Promise<string> {
    const paths = filePathsFor(this.#root, modelId, file.filename);
    // Fast path without queueing behind another file's download: a recorded, unchanged file.
    const ready = await this.#verifiedCopy(paths, file, { mayHash: false, recordedOnly: true });
    if (ready !== undefined) return ready;
    const shared = this.#inflight.get(paths.dest) ?? this.#start(modelId, file, paths);
    return this.#wait(shared, paths.dest, ctx);
  }

  /**
   * Wait for a shared provision on behalf of one caller. The caller's abort rejects its own wait at
   * once; the download itself stops only when no caller is left waiting for it.
   */
  #wait(shared: SharedProvision, dest: string, ctx: EnsureContext): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const waiter = { progress: ctx.progress };
      const leave = () => {
        shared.waiters.delete(waiter);
        ctx.signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        leave();
        reject(cancelled(shared.url, ctx.signal));
        if (shared.waiters.size === 0) {
          shared.controller.abort(ctx.signal.reason);
          // A caller arriving while this download winds down starts a new one (queued behind it)
          // instead of joining one that is about to fail as cancelled.
          if (this.#inflight.get(dest) === shared) this.#inflight.delete(dest);
        }
      };
      if (ctx.signal.aborted) {
        onAbort();
        return;
      }
      shared.waiters.add(waiter);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (path) => {
          leave();
          resolve(path);
        },
        (error: unknown) => {
          leave();
          reject(error);
        },
      );
    });
  }

  #start(modelId: string, file: ModelFile, paths: FilePaths): SharedProvision {
    const modelDir = dirname(paths.dest);
    const controller = new AbortController();
    const waiters: SharedProvision['waiters'] = new Set();
    const throttle = new ProgressThrottle(PROGRESS_INTERVAL_MS, this.#now, (update) => {
      for (const waiter of waiters) {
        try {
          waiter.progress(update);
        } catch {
          // One caller's broken progress sink must not fail another caller's download.
        }
      }
    });
    const report = (transfer: TransferProgress, final = false) => throttle.push(describeTransfer(file.filename, transfer), { final });
    const promise = this.#queued(modelDir, () => this.#provision(modelId, file, paths, controller.signal, report));
    const shared: SharedProvision = { modelDir, url: file.url, promise, controller, waiters };
    this.#inflight.set(paths.dest, shared);
    this.#running.add(shared);
    const settle = () => {
      this.#running.delete(shared);
      if (this.#inflight.get(paths.dest) === shared) this.#inflight.delete(paths.dest);
    };
    promise.then(settle, settle);
    return shared;
  }

  /** Run `task` after the model's earlier downloads: one download at a time per model, disk-friendly. */
  #queued<T>(modelDir: string, task: () => Promise<T>): Promise<T> {
    const before = this.#modelQueues.get(modelDir) ?? Promise.resolve();
    const run = before.then(task);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#modelQueues.set(modelDir, tail);
    void tail.then(() => {
      if (this.#modelQueues.get(modelDir) === tail) this.#modelQueues.delete(modelDir);
    });
    return run;
  }

  async #provision(modelId: string, file: ModelFile, paths: FilePaths, signal: AbortSignal, report: (transfer: TransferProgress, final?: boolean) => void): Promise<string> {
    if (signal.aborted) throw cancelled(file.url, signal);
    const log = this.#log.child({ op: 'model_download', modelId, file: file.filename });
    const checking = (done: number) => report({ stage: 'checking', done, total: file.approxBytes });
    // A verified copy on disk wins: no request is made, so neither the URL rules nor a cached
    // failure of the source stand in its way.
    const onDisk = await this.#verifiedCopy(paths, file, { mayHash: true, signal, onBytes: checking });
    if (onDisk !== undefined) return onDisk;

    const source = checkDownloadUrl(file.url, this.#allowLoopbackHttp);
    if (!source.ok) throw new ModelFileFailure('bad_url', `cannot download "${file.filename}" for model "${modelId}": ${source.problem}`, { retryable: false });
    const cached = this.#failures.recall(file.url);
    if (cached) throw cached;

    const modelDir = dirname(paths.dest);
    try {
      await mkdir(modelDir, { recursive: true });
    } catch (error) {
      throw new ModelFileFailure('local_io', `cannot create ${modelDir}: ${(error as Error).message}; check models_root in config.toml`, { retryable: true, cause: error });
    }
    await this.#preflight(modelDir, file, paths.part);

    const started = performance.now();
    log.info({ url: displayUrl(file.url), dest: paths.dest, approxBytes: file.approxBytes }, 'starting');
    let outcome;
    try {
      outcome = await downloadToPart({ url: file.url, partPath: paths.part, sha256: file.sha256?.toLowerCase(), approxBytes: file.approxBytes }, this.#env, signal, report);
    } catch (error) {
      const failure = error instanceof ModelFileFailure ? error : new ModelFileFailure('network', `downloading ${displayUrl(file.url)} failed: ${(error as Error).message}`, { retryable: true, cause: error });
      if (failure.kind === 'cancelled') log.info({ url: displayUrl(file.url) }, 'stopped; partial file kept');
      else log.warn({ url: displayUrl(file.url), kind: failure.kind, status: failure.httpStatus, retryable: failure.retryable }, failure.message);
      if (isSourceFailure(failure)) this.#failures.remember(file.url, failure);
      throw failure;
    }

    try {
      await rename(paths.part, paths.dest);
      await syncDir(modelDir);
      await writeVerifiedRecord(paths.dest, { sha256: outcome.sha256, url: file.url });
    } catch (error) {
      throw new ModelFileFailure('local_io', `placing ${paths.dest} failed: ${(error as Error).message}`, { retryable: true, cause: error });
    }
    report({ stage: 'done', done: outcome.size, total: outcome.size }, true);
    log.info({ bytes: outcome.size, sha256: outcome.sha256, elapsedMs: Math.round(performance.now() - started) }, 'done');
    return paths.dest;
  }

  /** Refuse to start a download the disk cannot hold (lesson §10.11: ENOSPC mid-stream). */
  async #preflight(modelDir: string, file: ModelFile, partPath: string): Promise<void> {
    if (file.approxBytes === undefined || file.approxBytes <= 0) return;
    const already = await sizeOrZero(partPath);
    const needed = Math.max(0, Math.ceil(file.approxBytes * DISK_HEADROOM) - already);
    let free: number;
    try {
      free = await this.#freeBytes(modelDir);
    } catch (error) {
      this.#log.warn({ op: 'model_download', modelDir, err: (error as Error).message }, 'could not read free disk space; downloading anyway');
      return;
    }
    if (free < needed) {
      throw new ModelFileFailure(
        'disk_space',
        `"${file.filename}" needs ${formatBytes(needed)} free in ${modelDir}, ${formatBytes(free)} available; free some space or point models_root at a bigger disk`,
        { retryable: true },
      );
    }
  }

  /**
   * The verified copy of `file`, at its per-model path or the legacy flat path, or undefined. A file
   * with an up-to-date record counts. Without one: with a pinned sha256, the file is hashed (when
   * `mayHash`) and recorded if it matches; without a pin, only a file no record speaks for and whose
   * size equals approxBytes exactly counts (the original's "existing copy" rule — a hand-placed or
   * original-worker file).
   */
  async #verifiedCopy(paths: FilePaths, file: ModelFile, options: { mayHash: boolean; recordedOnly?: boolean; signal?: AbortSignal; onBytes?: (done: number) => void }): Promise<string | undefined> {
    if (await this.#isVerified(paths.dest, file, options)) return paths.dest;
    if ((await this.#adoptPrevious(paths, file)) !== undefined) return paths.dest;
    if (await this.#isVerified(paths.legacy, file, options)) return paths.legacy;
    return undefined;
  }

  /**
   * A file verified in the folder versions before issue 9 used (`<sanitised id>/`, shared by ids
   * that sanitise alike) moves into the model's own folder, with its record. Only a file whose
   * record matches this model's entry is taken: that folder may belong to another model.
   */
  async #adoptPrevious(paths: FilePaths, file: ModelFile): Promise<string | undefined> {
    const previous = paths.previous;
    if (previous === undefined) return undefined;
    let info;
    try {
      info = await stat(previous);
    } catch {
      return undefined;
    }
    const record = await readVerifiedRecord(previous);
    if (!info.isFile() || record === undefined || !recordMatches(record, info, file)) return undefined;
    try {
      await mkdir(dirname(paths.dest), { recursive: true });
      // The file first: a crash in between leaves a file without a record, which is checked again.
      await rename(previous, paths.dest);
      await rename(verifiedRecordPath(previous), verifiedRecordPath(paths.dest));
      await syncDir(dirname(paths.dest));
    } catch (error) {
      this.#log.warn({ op: 'model_migrate', from: previous, to: paths.dest, err: (error as Error).message }, 'could not move a verified file to its model folder');
      return undefined;
    }
    this.#log.info({ op: 'model_migrate', from: previous, to: paths.dest }, 'moved a verified file into its model folder');
    return paths.dest;
  }

  async #isVerified(path: string, file: ModelFile, options: { mayHash: boolean; recordedOnly?: boolean; signal?: AbortSignal; onBytes?: (done: number) => void }): Promise<boolean> {
    let info;
    try {
      info = await stat(path);
    } catch {
      return false;
    }
    if (!info.isFile()) return false;
    const record = await readVerifiedRecord(path);
    if (record && recordMatches(record, info, file)) return true;
    if (options.recordedOnly) return false;
    if (file.sha256 !== undefined) {
      if (!options.mayHash) return false;
      let sha: string;
      try {
        sha = await sha256OfFile(path, { signal: options.signal, onBytes: options.onBytes });
      } catch (error) {
        if (options.signal?.aborted) throw cancelled(file.url, options.signal);
        this.#log.warn({ op: 'model_verify', path, err: (error as Error).message }, 'could not read an existing model file');
        return false;
      }
      if (sha !== file.sha256.toLowerCase()) {
        this.#log.warn({ op: 'model_verify', path, sha256: sha, expected: file.sha256.toLowerCase() }, 'existing file does not match the pinned sha256; not using it');
        return false;
      }
      await writeVerifiedRecord(path, { sha256: sha, url: file.url }).catch((error: unknown) => {
        this.#log.warn({ op: 'model_verify', path, err: (error as Error).message }, 'could not write the verification record; the file will be hashed again next time');
      });
      this.#log.info({ op: 'model_verify', path }, 'existing file matches the pinned sha256');
      return true;
    }
    return record === undefined && file.approxBytes !== undefined && file.approxBytes > 0 && info.size === file.approxBytes;
  }

  async #stopAll(which: (shared: SharedProvision) => boolean, reason: string): Promise<void> {
    const stopping = [...this.#running].filter(which);
    for (const shared of stopping) shared.controller.abort(new Error(reason));
    await Promise.allSettled(stopping.map((shared) => shared.promise));
  }
}

async function defaultFreeBytes(dir: string): Promise<number> {
  const info = await statfs(dir);
  return Number(info.bavail) * Number(info.bsize);
}

async function sizeOrZero(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function filesIn(dir: string, names: string[]): Promise<Array<{ name: string; bytes: number }>> {
  const files: Array<{ name: string; bytes: number }> = [];
  for (const name of names.sort()) {
    if (name.endsWith(PART_SUFFIX) || name.endsWith(VERIFIED_SUFFIX) || RECORD_TEMP.test(name) || isAtomicTempName(name)) continue;
    try {
      files.push({ name, bytes: (await stat(join(dir, name))).size });
    } catch {
      // Gone between readdir and stat.
    }
  }
  return files;
}
