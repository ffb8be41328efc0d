import type { FailCode, InFlightJob, WorkerFrame } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { uploadResult, type StudioHttpClient } from '../studio-api/index.ts';
import { uploadRetryDelayMs } from '../session/backoff.ts';
import type { LinkHolder, StudioLink } from '../session/link.ts';
import type { Outbox, OutboxEntry, OutboxKind } from './outbox.ts';
import { sleep } from '../platform/sleep.ts';

/** Who the worker is right now, for uploads; null while it has no credentials. */
export interface UploadCredentials {
  client: StudioHttpClient;
  workerId: string;
  authToken: string;
}

export interface ResultDeliveryOptions {
  outbox: Outbox;
  links: LinkHolder;
  credentials: () => UploadCredentials | null;
  timings: () => { uploadRetryBaseMs: number; uploadGiveUpMs: number };
  log: Logger;
}

/**
 * Moves outbox entries to the studio while a session is up (DESIGN.md worker rule 3):
 * JSON results as `completeJson` (removed on `completeAck`), failures as `fail` (removed on
 * `failAck`), binary results as a multipart upload (removed on 2xx, or when the studio refuses
 * them for good). Every entry is re-sent on every new session, so a result made while disconnected,
 * or before a restart, still arrives.
 */
export class ResultDelivery {
  readonly #options: ResultDeliveryOptions;
  /** Entry key → id of the link it was last sent on (frames go once per session). */
  readonly #sentOn = new Map<string, number>();
  /** Entry key → its upload in progress (and the link it runs for). */
  readonly #uploads = new Map<string, { controller: AbortController; linkId: number }>();
  /** Entry key → when its upload first failed (give-up clock). */
  readonly #failingSince = new Map<string, number>();

  constructor(options: ResultDeliveryOptions) {
    this.#options = options;
    options.links.onUp((link) => this.deliverAll(link));
  }

  /** Jobs whose result waits in the outbox (`state: 'finished'` in hello and heartbeats). */
  finishedJobs(): InFlightJob[] {
    return this.#options.outbox.entries().map((entry) => ({
      jobId: entry.jobId,
      ...(entry.attempt === undefined ? {} : { attempt: entry.attempt }),
      state: 'finished' as const,
    }));
  }

  /** Send everything in the outbox over this (new) link. */
  deliverAll(link: StudioLink): void {
    const entries = this.#options.outbox.entries();
    if (entries.length > 0) this.#options.log.info({ op: 'outbox', entries: entries.length }, `re-sending ${entries.length} outbox entr${entries.length === 1 ? 'y' : 'ies'}`);
    for (const entry of entries) this.#deliverOn(entry, link);
  }

  /** Deliver one new entry now if a session is up (otherwise the next session picks it up). */
  deliver(entry: OutboxEntry): void {
    const link = this.#options.links.current;
    if (link) this.#deliverOn(entry, link);
  }

  /** `completeAck` / `failAck`: the studio has it; forget it. */
  async acknowledge(kind: Extract<OutboxKind, 'json' | 'fail'>, jobId: string, attempt?: number): Promise<void> {
    const entries = this.#options.outbox.find(jobId, attempt, [kind]);
    for (const entry of entries) await this.#remove(entry);
    const what = kind === 'json' ? 'completion' : 'failure';
    this.#options.log.info({ op: 'outbox', jobId, attempt, removed: entries.length }, `studio confirmed ${what} of job ${jobId}`);
  }

  /** `error{stale_attempt}` for a job: the studio will never take these entries. */
  async dropStale(jobId: string, attempt?: number): Promise<void> {
    for (const entry of this.#options.outbox.find(jobId, attempt)) await this.#remove(entry);
  }

  /**
   * The studio cancelled a job whose result is already here: never upload it; send `fail{cancelled}`
   * instead (the studio frees the worker's slot on it). Returns false when nothing was held.
   */
  async cancelHeld(jobId: string, attempt: number | undefined, reason: string): Promise<boolean> {
    const held = this.#options.outbox.find(jobId, attempt, ['json', 'file']);
    if (held.length === 0) return false;
    for (const entry of held) {
      this.#uploads.get(entry.key)?.controller.abort();
      await this.replaceWithFailure(entry, { code: 'cancelled', retryable: false, error: reason });
    }
    return true;
  }

  /** Turn an entry into a failure report for the same claim and deliver that. */
  async replaceWithFailure(entry: OutboxEntry, failure: { code: FailCode; retryable: boolean; error: string }): Promise<void> {
    this.#forget(entry.key);
    const replaced = await this.#options.outbox.put(entry.jobId, entry.attempt, { kind: 'fail', ...failure });
    this.deliver(replaced);
  }

  /**
   * Shutdown: wait until the outbox is empty, the session is gone, or `timeoutMs` passed.
   * Resolves true when everything was acknowledged.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const { outbox, links } = this.#options;
    if (outbox.size === 0) return true;
    const link = links.current;
    if (!link) return false;
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        off();
        link.closed.removeEventListener('abort', onClosed);
        resolve(value);
      };
      const onClosed = () => done(outbox.size === 0);
      const timer = setTimeout(() => done(outbox.size === 0), timeoutMs);
      const off = outbox.onChange(() => {
        if (outbox.size === 0) done(true);
      });
      link.closed.addEventListener('abort', onClosed, { once: true });
    });
  }

  /** Stop every upload in progress (shutdown). */
  abortUploads(): void {
    for (const upload of this.#uploads.values()) upload.controller.abort();
  }

  #deliverOn(entry: OutboxEntry, link: StudioLink): void {
    if (entry.kind === 'file') {
      void this.#upload(entry, link);
      return;
    }
    if (this.#sentOn.get(entry.key) === link.id) return;
    const frame: WorkerFrame =
      entry.kind === 'json'
        ? { type: 'completeJson', jobId: entry.jobId, result: entry.result, prompt: entry.prompt, attempt: entry.attempt }
        : { type: 'fail', jobId: entry.jobId, error: entry.error, retryable: entry.retryable, code: entry.code, attempt: entry.attempt };
    if (link.send(frame)) {
      this.#sentOn.set(entry.key, link.id);
      this.#options.log.info(
        { op: 'deliver', jobId: entry.jobId, attempt: entry.attempt, kind: entry.kind },
        entry.kind === 'json' ? 'json result sent; waiting for completeAck' : `failure sent (${entry.code}); waiting for failAck`,
      );
    }
  }

  async #upload(entry: OutboxEntry & { kind: 'file' }, link: StudioLink): Promise<void> {
    const running = this.#uploads.get(entry.key);
    if (running && running.linkId === link.id) return;
    // One left over from a session that just ended may still be unwinding; this one replaces it.
    running?.controller.abort();
    const controller = new AbortController();
    const upload = { controller, linkId: link.id };
    this.#uploads.set(entry.key, upload);
    const { log, outbox } = this.#options;
    const fields = { op: 'upload', jobId: entry.jobId, attempt: entry.attempt };
    try {
      for (let round = 0; ; round++) {
        const credentials = this.#options.credentials();
        if (controller.signal.aborted || link.closed.aborted || !credentials || outbox.get(entry.key) !== entry) return;
        const outcome = await uploadResult(credentials.client, {
          workerId: credentials.workerId,
          authToken: credentials.authToken,
          jobId: entry.jobId,
          attempt: entry.attempt,
          prompt: entry.prompt,
          ext: entry.ext,
          bodyPath: outbox.bodyPath(entry),
          signal: AbortSignal.any([controller.signal, link.closed]),
        });
        if (controller.signal.aborted) return;
        switch (outcome.kind) {
          case 'ok':
            log.info({ ...fields, bytes: entry.bytes, status: outcome.status }, 'binary upload ok');
            await this.#remove(entry);
            return;
          case 'stale':
            log.warn({ ...fields, status: outcome.status }, `the studio no longer holds this claim (409 — ${outcome.message}); dropping the result`);
            await this.#remove(entry);
            return;
          case 'refused':
            log.error({ ...fields, status: outcome.status }, `the studio refused the result upload (${outcome.status} — ${outcome.message}); reporting the job as failed`);
            await this.replaceWithFailure(entry, { code: 'upload_failed', retryable: false, error: `upload refused: ${outcome.status} — ${outcome.message}` });
            return;
          case 'retry': {
            const now = Date.now();
            const since = this.#failingSince.get(entry.key) ?? now;
            this.#failingSince.set(entry.key, since);
            const { uploadRetryBaseMs, uploadGiveUpMs } = this.#options.timings();
            if (link.closed.aborted) return;
            if (now - since >= uploadGiveUpMs) {
              log.error({ ...fields, status: outcome.status }, `result upload kept failing for ${Math.round(uploadGiveUpMs / 1000)} s (${outcome.message}); giving the job back`);
              await this.replaceWithFailure(entry, { code: 'upload_failed', retryable: true, error: `upload failed: ${outcome.message}` });
              return;
            }
            const delay = uploadRetryDelayMs(round, uploadRetryBaseMs);
            log.warn({ ...fields, status: outcome.status, round: round + 1, delayMs: delay }, `result upload failed (${outcome.status ?? 'no answer'} — ${outcome.message}); retrying in ${delay} ms`);
            await sleep(delay, AbortSignal.any([controller.signal, link.closed]));
            break;
          }
        }
      }
    } catch (error) {
      log.error({ ...fields, err: error }, 'result upload crashed; it stays in the outbox for the next session');
    } finally {
      if (this.#uploads.get(entry.key) === upload) this.#uploads.delete(entry.key);
    }
  }

  async #remove(entry: OutboxEntry): Promise<void> {
    this.#forget(entry.key);
    await this.#options.outbox.remove(entry.key);
  }

  #forget(key: string): void {
    this.#sentOn.delete(key);
    this.#failingSince.delete(key);
  }
}
