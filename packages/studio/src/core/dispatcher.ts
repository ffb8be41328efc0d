import {
  closeCodeForError,
  enginesByKind,
  encodeFrame,
  MAX_LOG_BATCH_ENTRIES,
  parseWorkerFrame,
  PROTOCOL_FEATURES,
  type CompleteJsonFrame,
  type ErrorCode,
  type FailFrame,
  type HeartbeatFrame,
  type HelloFrame,
  type InFlightJob,
  type LogBatchFrame,
  type ModelSource,
  type ProgressFrame,
  type RejectFrame,
  type StudioFrame,
  type WorkerCapabilities,
} from '@studio-worker/protocol';
import { featuresNeededBy } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { JobStore, type AttemptTimes, type ClaimMade, type JobRow, type NewJob, type OfferRow } from './job-store.ts';
import { frameFor, offerTextFor, originalIncompatibility, takesStoredOffer } from './peer-shapes.ts';
import type { Ports } from './ports.ts';
import { fail, ok, iso, type Result } from './result.ts';
import { workerTokenMatches } from './worker-auth.ts';
import { decideAfterClaim, type ClaimEnding, type RetryPolicy } from './retry-policy.ts';
import {
  applyCapabilities,
  canRun,
  canTakeOffers,
  hasFreeSlot,
  newSession,
  SessionSnapshot,
  skipList,
  snapshotOf,
  sortSessions,
  type JobTraits,
  type Session,
} from './sessions.ts';
import type { Stores } from './stores.ts';
import { jobView, workerView } from './views.ts';
import type { WorkerStore } from './worker-store.ts';

export interface DispatcherOptions extends RetryPolicy {
  /** How long a claim lives without a heartbeat from its worker. */
  leaseMs: number;
  /** A session without a heartbeat for this long is closed. */
  staleSessionMs: number;
  /** A socket that has not said a valid hello this long after it opened is closed (4002). */
  helloTimeoutMs: number;
  /** After a busy/paused refusal, no offers to that worker until its next heartbeat, or this long. */
  rejectHoldMs: number;
  /** After an unsupported refusal, that job is not offered to that worker for this long. */
  unsupportedSkipMs: number;
  /** Consecutive failures after which a worker gets no offers for `cooldownMs`. */
  cooldownAfterFailures: number;
  cooldownMs: number;
  /**
   * An offer a live worker neither accepts nor refuses within this long is taken back: heartbeats
   * keep leases alive, so without this a worker that stopped answering offers would hold them forever.
   */
  offerAnswerMs: number;
  /** Malformed frames a session may send before it is closed with 4002. */
  maxViolations: number;
  /** Worker log lines kept per worker. */
  logLinesPerWorker: number;
}

export const DEFAULT_DISPATCHER_OPTIONS: DispatcherOptions = {
  leaseMs: 30_000,
  staleSessionMs: 30_000,
  helloTimeoutMs: 10_000,
  rejectHoldMs: 5_000,
  offerAnswerMs: 30_000,
  unsupportedSkipMs: 60_000,
  cooldownAfterFailures: 3,
  cooldownMs: 180_000,
  maxViolations: 20,
  logLinesPerWorker: 5_000,
  maxLosses: 10,
  retryBackoffMs: 1_000,
  retryBackoffMaxMs: 300_000,
};

/** A file a worker uploaded, already on the host's disk under `fileName`. */
export interface UploadedResult {
  fileName: string;
  ext: string;
  bytes: number;
}

const LEGACY_TRANSIENT = /busy|in-flight|in flight|paused|already has/i;

/**
 * The dispatcher: worker sessions, offers, claims, leases and results. Synchronous and
 * deterministic over its ports; every job state change is one guarded SQL statement (or one
 * transaction), so a duplicate or stale message can never change a job twice.
 */
export class Dispatcher {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private readonly opts: DispatcherOptions;
  private readonly log: Logger;
  /** Also `stores.jobs` / `stores.workers`: services take those; the HTTP routes still read these two. */
  private readonly jobs: JobStore;
  private readonly workers: WorkerStore;
  private readonly byConn = new Map<string, Session>();
  private readonly byWorker = new Map<string, Session>();
  /** Welcomed sessions with a free slot, in the order they became free (the longest idle first). */
  private readonly idle = new Set<Session>();
  /**
   * Connections whose snapshot-only state (a released claim, an offer hold) changed outside a message
   * of their own — by the lease sweep, an offer take-back, an operator's cancel. A host that keeps
   * each session's snapshot beside its socket (a Durable Object) refreshes these after the alarm or
   * request (`takeChangedSessions`); after a message it refreshes that socket's anyway.
   */
  private readonly changedOutside = new Set<string>();
  /** Sessions that have not said hello yet, oldest first (the hello timeout looks only at these). */
  private readonly greeting = new Set<Session>();
  /** Current welcomed sessions, least recent heartbeat first (the stale sweep looks only at the head). */
  private readonly byHeartbeat = new Set<Session>();
  /** Restored sessions were added to `greeting` and `byHeartbeat` out of order (see restoreSession). */
  private unordered = false;
  /** Within `handleTexts`: another frame of the same read follows the one being handled. */
  private moreInRead = false;
  /**
   * An accept held back until the next frame of the same read (see `handleTexts`): stored with that
   * frame's result when it is the job's completeJson, else written before that frame is handled.
   */
  private heldAccept: { session: Session; jobId: string; attempt: number; at: number } | undefined;
  /** Backed-off jobs that became due after this time have not been offered yet (0: look at all). */
  private lastDueCheck = 0;

  constructor(ports: Ports, stores: Stores, opts: DispatcherOptions, log: Logger) {
    this.ports = ports;
    this.stores = stores;
    this.opts = opts;
    this.log = log;
    this.jobs = stores.jobs;
    this.workers = stores.workers;
  }

  // ------------------------------------------------------------------ connections

  /** The connections `changedOutside` names, once each (the set is emptied). */
  takeChangedSessions(): string[] {
    const ids = [...this.changedOutside];
    this.changedOutside.clear();
    return ids;
  }

  /** The host accepted an upgrade whose bearer token it verified for `workerId`. */
  connectionOpened(connId: string, workerId: string): void {
    const session = newSession(connId, workerId, this.now());
    this.byConn.set(connId, session);
    this.greeting.add(session);
    this.log.debug({ op: 'session', connId, workerId }, 'connection opened');
  }

  connectionClosed(connId: string, code: number, reason = ''): void {
    const session = this.byConn.get(connId);
    if (!session) return;
    this.byConn.delete(connId);
    this.idle.delete(session);
    this.greeting.delete(session);
    this.byHeartbeat.delete(session);
    this.changedOutside.delete(connId);
    session.closed = true;
    const current = this.byWorker.get(session.workerId) === session;
    if (current) this.byWorker.delete(session.workerId);
    this.log.info({ op: 'session', connId, workerId: session.workerId, code, reason, held: session.held.size }, 'connection closed');
    if (!current || !session.welcomed) return;
    // A worker that can resume keeps its claims until their leases run out: it may reconnect
    // within the lease and finish (or re-send) them. One that cannot resume (the original) has
    // lost them now, so hand them back at once instead of waiting for the sweep.
    if (!session.features.has('resume')) {
      for (const [jobId, claim] of session.held) {
        if (!claim.released) this.endHeldClaim(session.workerId, jobId, claim.attempt, { kind: 'lost', error: `connection to ${session.workerId} closed (${code})` });
      }
    }
    this.publishWorker(session.workerId);
  }

  /**
   * What of this connection's session lives only in memory, small and structured-clonable (see
   * SessionSnapshot): a host that may lose its memory while the socket stays open keeps it beside
   * the socket (a Durable Object: the WebSocket attachment, refreshed after each message on it).
   */
  sessionSnapshot(connId: string): SessionSnapshot | undefined {
    const session = this.byConn.get(connId);
    return session && !session.closed ? snapshotOf(session) : undefined;
  }

  /**
   * Bring a session back after the host lost its memory (a new Dispatcher over the same SQL), as
   * if nothing happened: capabilities and cooldown from the `workers` row, held claims from the
   * worker's claimed/running `jobs` rows, claims already released from the snapshot. A worker
   * deleted meanwhile is told so and closed. Answers whether the session lives on.
   */
  restoreSession(snapshot: unknown): boolean {
    const parsed = SessionSnapshot.safeParse(snapshot);
    if (!parsed.success) {
      this.log.warn({ op: 'session', problem: parsed.error.issues[0]?.message }, 'a session snapshot could not be read; the socket is left for the host to close');
      return false;
    }
    const s = parsed.data;
    if (this.byConn.has(s.conn)) return true;
    const session = newSession(s.conn, s.worker, s.connectedAt);
    session.violations = s.violations;
    this.byConn.set(s.conn, session);
    this.unordered = true;
    if (!s.welcomed) {
      this.greeting.add(session);
      return true;
    }
    const worker = this.workers.get(s.worker);
    if (!worker || worker.deleted_at !== null) {
      this.refuseAndClose(session, 'worker_deleted', `worker ${s.worker} was deleted in the studio; run "studio-worker register --reset" to register again`);
      return false;
    }
    let caps: WorkerCapabilities;
    try {
      caps = JSON.parse(worker.capabilities ?? '') as WorkerCapabilities;
    } catch {
      // Cannot happen for a welcomed worker (hello stored them); a reconnect says hello afresh.
      this.ports.channel.close(s.conn, 1011, 'session lost; reconnect');
      this.byConn.delete(s.conn);
      return false;
    }
    applyCapabilities(session, caps);
    session.storedCapabilities = worker.capabilities ?? undefined;
    session.welcomed = true;
    session.lastHeartbeatAt = s.heartbeatAt;
    session.holdUntil = s.holdUntil;
    session.cooldownUntil = worker.cooldown_until ?? 0;
    for (const [jobId, until] of s.skip) session.skip.set(jobId, until ?? Number.POSITIVE_INFINITY);
    const current = this.byWorker.get(s.worker);
    if (current) {
      // Both sockets were open when memory was lost: the newer one is (or would have been) the winner.
      if (current.connectedAt > session.connectedAt) {
        this.displace(session, current);
        return false;
      }
      this.displace(current, session);
    }
    this.byWorker.set(s.worker, session);
    this.byHeartbeat.add(session);
    const uploading = new Set(s.uploading);
    for (const claim of this.jobs.heldBy(s.worker)) {
      session.held.set(claim.id, uploading.has(claim.id) ? { attempt: claim.attempt, released: false, uploading: true } : { attempt: claim.attempt, released: false });
    }
    for (const [jobId, attempt] of s.released) if (!session.held.has(jobId)) session.held.set(jobId, { attempt, released: true });
    this.refreshIdle(session);
    return true;
  }

  /**
   * The text frames of one read of a worker's socket, in order (a host that reads whole chunks, like
   * the Node host's). A quick job's accept and its completeJson often arrive in the same read: the
   * accept is then stored together with the result, one guarded UPDATE instead of two (about 7 µs
   * of a job's ~95 µs of studio CPU in `npm run bench`). Nothing can read the job between the two:
   * they are handled back to back, and every other frame, or the end of the read, writes a held
   * accept first, so the outcome is the same as frame by frame.
   */
  handleTexts(connId: string, texts: readonly string[]): void {
    try {
      for (let i = 0; i < texts.length; i++) {
        this.moreInRead = i + 1 < texts.length;
        this.handleText(connId, texts[i] as string);
      }
    } finally {
      this.moreInRead = false;
      this.writeHeldAccept();
    }
  }

  /** One text frame from a worker. */
  handleText(connId: string, text: string): void {
    const session = this.byConn.get(connId);
    const parsed = parseWorkerFrame(text);
    const held = this.heldAccept;
    if (held && !(parsed.ok && parsed.frame.type === 'completeJson' && parsed.frame.jobId === held.jobId && held.session === session)) this.writeHeldAccept();
    if (!session || session.closed) return;
    if (!parsed.ok) {
      if (parsed.kind === 'unknown_type') {
        // Forward compatible: a newer worker may send frames we do not know yet.
        this.log.debug({ op: 'frame', workerId: session.workerId, type: parsed.type }, 'ignored a frame of unknown type');
        return;
      }
      if (parsed.type === 'logBatch') {
        // Logs are best effort, and an error frame would end an original worker's session.
        this.log.warn({ op: 'worker_logs', workerId: session.workerId, problem: parsed.message }, 'dropped a log batch that could not be read');
        return;
      }
      this.violation(session, `malformed ${parsed.type ?? 'frame'}: ${parsed.message}`);
      return;
    }
    const frame = parsed.frame;
    if (!session.welcomed && frame.type !== 'hello') {
      this.violation(session, `send hello before ${frame.type}`);
      return;
    }
    switch (frame.type) {
      case 'hello':
        return this.onHello(session, frame);
      case 'heartbeat':
        return this.onHeartbeat(session, frame);
      case 'accept':
        return this.onAccept(session, frame.jobId, frame.attempt);
      case 'reject':
        return this.onReject(session, frame);
      case 'progress':
        return this.onProgress(session, frame);
      case 'completeJson':
        return this.onCompleteJson(session, frame);
      case 'fail':
        return this.onFail(session, frame);
      case 'logBatch':
        return this.onLogBatch(session, frame);
      case 'readyForMore':
        return; // the original's retired frame: the studio alone drives offers
    }
  }

  /** A binary frame: never part of the protocol. */
  handleBinary(connId: string): void {
    const session = this.byConn.get(connId);
    if (session) this.violation(session, 'binary frames are not part of the protocol; send JSON text frames');
  }

  // ------------------------------------------------------------------ frames

  private onHello(session: Session, frame: HelloFrame): void {
    if (session.welcomed) return this.violation(session, 'hello sent twice on one connection');
    const worker = this.workers.get(session.workerId);
    if (!worker || worker.deleted_at !== null) {
      return this.refuseAndClose(session, 'worker_deleted', `worker ${session.workerId} was deleted in the studio; run "studio-worker register --reset" to register again`);
    }
    if (!workerTokenMatches(this.ports.crypto, worker, frame.authToken)) {
      return this.refuseAndClose(session, 'auth_failed', 'the auth token in hello does not match this worker; re-register the worker');
    }
    const previous = this.byWorker.get(session.workerId);
    if (previous && previous !== session) this.displace(previous, session);
    this.byWorker.set(session.workerId, session);
    const now = this.now();
    applyCapabilities(session, frame.capabilities);
    session.welcomed = true;
    this.greeting.delete(session);
    session.lastHeartbeatAt = now;
    this.byHeartbeat.add(session);
    session.cooldownUntil = worker.cooldown_until ?? 0;
    session.storedCapabilities = JSON.stringify(frame.capabilities);
    this.workers.markConnected(session.workerId, now, session.storedCapabilities);
    this.sendFrame(session, {
      type: 'welcome',
      workerId: session.workerId,
      serverTime: iso(now),
      protocolFeatures: [...PROTOCOL_FEATURES],
      leaseSeconds: this.opts.leaseMs / 1000,
    });
    this.log.info(
      { op: 'session', workerId: session.workerId, connId: session.connId, features: [...session.features], kinds: session.kindEngines },
      'worker welcomed',
    );
    this.resume(session, frame.inFlight ?? []);
    this.publishWorker(session.workerId);
    this.offerNextFor(session);
  }

  /** Two processes with one worker id: the newest wins, the older stops for good (no thrash). */
  private displace(previous: Session, newer: Session): void {
    this.sendFrame(previous, {
      type: 'error',
      code: 'duplicate_worker',
      message: `another process connected as worker ${newer.workerId} and took over; stop one of them (only one process may run per worker id)`,
    });
    this.ports.channel.close(previous.connId, closeCodeForError('duplicate_worker'), 'duplicate worker');
    previous.closed = true;
    this.idle.delete(previous);
    this.byHeartbeat.delete(previous);
    this.byConn.delete(previous.connId);
    if (this.byWorker.get(previous.workerId) === previous) this.byWorker.delete(previous.workerId);
    // The claims belong to the worker id, so the new session inherits them (resume sorts them out).
    this.log.warn({ op: 'session', workerId: newer.workerId, older: previous.connId, newer: newer.connId }, 'duplicate worker: closed the older session');
  }

  /**
   * Reconcile the claims the database holds for this worker with what its hello says it still has.
   * Listed and current: kept (lease renewed). Held but not listed: the worker lost them (restart,
   * crash), so they go back to the queue now. Listed but no longer this worker's: told to stop.
   */
  private resume(session: Session, inFlight: readonly InFlightJob[]): void {
    const now = this.now();
    const listed = new Map(inFlight.map((j) => [j.jobId, j]));
    for (const claim of this.jobs.heldBy(session.workerId)) {
      const entry = listed.get(claim.id);
      listed.delete(claim.id);
      if (entry && (entry.attempt === undefined || entry.attempt === claim.attempt)) {
        session.held.set(claim.id, { attempt: claim.attempt, released: false });
        continue;
      }
      // Never accepted: nothing ran, so it is not counted. Accepted and gone: the worker lost it.
      const ending: ClaimEnding =
        claim.status === 'claimed'
          ? { kind: 'handed_back', error: `worker ${session.workerId} reconnected without the offer` }
          : { kind: 'lost', error: `worker ${session.workerId} reconnected without the job (restart or crash)` };
      this.endHeldClaim(session.workerId, claim.id, claim.attempt, ending);
    }
    for (const entry of listed.values()) {
      if (entry.state === 'running') this.sendCancel(session, entry.jobId, entry.attempt, 'this claim is no longer yours (it expired or the job ended)');
      // A finished entry will be re-sent by the worker and refused as stale then.
    }
    if (session.held.size > 0) this.jobs.renewLeases(session.workerId, now + this.opts.leaseMs);
  }

  private onHeartbeat(session: Session, frame: HeartbeatFrame): void {
    const now = this.now();
    applyCapabilities(session, frame.capabilities);
    session.lastHeartbeatAt = now;
    // To the back of the heartbeat order (the clock only moves forward, so it stays sorted).
    if (this.byHeartbeat.delete(session)) this.byHeartbeat.add(session);
    session.holdUntil = 0;
    this.renewListedLeases(session, frame, now);
    this.forgetReleasedClaims(session, frame);
    const caps = JSON.stringify(frame.capabilities);
    const changed = caps !== session.storedCapabilities;
    if (changed) session.storedCapabilities = caps;
    this.workers.touchHeartbeat(session.workerId, now, changed ? caps : null);
    this.sendFrame(session, { type: 'heartbeatAck' });
    this.refreshIdle(session);
    if (this.ports.events.enabled) this.publishWorker(session.workerId);
    // Self-heal: an idle worker asks for nothing, so every heartbeat is a chance to offer.
    this.offerNextFor(session);
  }

  /**
   * Claims follow the worker's word: a heartbeat renews the lease of each claim it lists (running,
   * or finished and waiting for its result to be acknowledged), and only those. A claim the worker
   * stopped listing runs out after one lease and the sweep hands it back (and cancels it there),
   * instead of living on as a zombie that every heartbeat kept alive. Offers not yet accepted are
   * not listed; their lease runs from the offer. A worker that sends no `inFlight` at all (the
   * original) names at most `currentJobId`, so all of its claims are renewed as before.
   */
  private renewListedLeases(session: Session, frame: HeartbeatFrame, now: number): void {
    const until = now + this.opts.leaseMs;
    if (frame.inFlight === undefined) {
      this.jobs.renewLeases(session.workerId, until);
      return;
    }
    for (const entry of frame.inFlight) {
      const claim = session.held.get(entry.jobId);
      if (!claim || claim.released || (entry.attempt !== undefined && entry.attempt !== claim.attempt)) continue;
      this.jobs.renewLease(entry.jobId, session.workerId, claim.attempt, until);
    }
  }

  /** Claims the studio already ended stay in `held` until the worker stops reporting them. */
  private forgetReleasedClaims(session: Session, frame: HeartbeatFrame): void {
    const reported = new Set<string>();
    for (const j of frame.inFlight ?? []) reported.add(j.jobId);
    if (frame.currentJobId) reported.add(frame.currentJobId);
    for (const [jobId, claim] of session.held) if (claim.released && !reported.has(jobId)) session.held.delete(jobId);
  }

  private onAccept(session: Session, jobId: string, frameAttempt: number | undefined): void {
    const claim = session.held.get(jobId);
    const attempt = this.attemptFor(session, jobId, frameAttempt);
    if (claim && !claim.released && attempt === claim.attempt && this.moreInRead) {
      // Maybe its result is the next frame (handleTexts).
      this.heldAccept = { session, jobId, attempt, at: this.now() };
      return;
    }
    this.acceptNow(session, jobId, attempt, this.now());
  }

  private acceptNow(session: Session, jobId: string, attempt: number | undefined, now: number): void {
    const claim = session.held.get(jobId);
    if (claim && !claim.released && attempt === claim.attempt) {
      if (this.jobs.markRunning(jobId, session.workerId, attempt, now, now + this.opts.leaseMs)) {
        this.publishJob(jobId);
        return;
      }
    }
    if (claim?.released) return this.sendCancel(session, jobId, attempt, 'the job was cancelled');
    this.refuseStale(session, jobId, attempt, 'accept');
  }

  /** Store a held-back accept now (the frame after it was not its result, or the read ended). */
  private writeHeldAccept(): void {
    const held = this.heldAccept;
    if (!held) return;
    this.heldAccept = undefined;
    if (!held.session.closed) this.acceptNow(held.session, held.jobId, held.attempt, held.at);
  }

  private onReject(session: Session, frame: RejectFrame): void {
    const claim = session.held.get(frame.jobId);
    if (!claim || this.attemptFor(session, frame.jobId, frame.attempt) !== claim.attempt) {
      this.log.debug({ op: 'offer', workerId: session.workerId, jobId: frame.jobId }, 'reject for a claim this session does not hold');
      return;
    }
    session.held.delete(frame.jobId);
    const now = this.now();
    const code = frame.code ?? (LEGACY_TRANSIENT.test(frame.reason) ? 'busy' : 'unsupported');
    if (code === 'unsupported') session.skip.set(frame.jobId, now + this.opts.unsupportedSkipMs);
    else session.holdUntil = now + this.opts.rejectHoldMs;
    this.refreshIdle(session);
    if (claim.released) return;
    // Transient refusals never count as attempts: the job goes back as it was.
    if (this.jobs.unclaim(frame.jobId, session.workerId, claim.attempt, now)) {
      this.log.info({ op: 'offer', workerId: session.workerId, jobId: frame.jobId, code, reason: frame.reason }, 'offer rejected');
      this.publishJob(frame.jobId);
      this.dispatchJobId(frame.jobId);
    }
  }

  private onProgress(session: Session, frame: ProgressFrame): void {
    const claim = session.held.get(frame.jobId);
    if (!claim || claim.released) return;
    if (frame.phase === 'uploading' && !claim.uploading && session.features.has('prefetch')) {
      // Only the upload is left: the prefetching worker's engine takes the next job meanwhile,
      // instead of idling until this result has arrived.
      claim.uploading = true;
      this.refreshIdle(session);
      this.offerNextFor(session);
    }
    const now = this.now();
    const { type: _type, jobId: _jobId, attempt: _attempt, preview, ...progress } = frame;
    // A live preview goes to the dashboards as it is and is not stored.
    if (preview !== undefined && this.ports.events.enabled) this.ports.events.publish({ type: 'jobPreview', jobId: frame.jobId, mime: preview.mime, data: preview.data });
    const attempt = this.attemptFor(session, frame.jobId, frame.attempt);
    if (attempt !== undefined && this.jobs.setProgress(frame.jobId, session.workerId, attempt, JSON.stringify({ ...progress, at: iso(now) }), now)) {
      this.publishJob(frame.jobId);
    }
  }

  /**
   * `frame.prompt` is not read: workers send the prompt back for the original studio, which files a
   * result under it; this studio files it under its own record of the job (the same holds for the
   * upload's `prompt` field).
   */
  private onCompleteJson(session: Session, frame: CompleteJsonFrame): void {
    const attempt = this.attemptFor(session, frame.jobId, frame.attempt);
    const now = this.now();
    // Its accept, held back by handleTexts, is stored by the same UPDATE (accepted at its own time);
    // on any other outcome it is stored on its own first, as frame by frame.
    if (this.heldAccept && this.heldAccept.attempt !== attempt) this.writeHeldAccept();
    const acceptedAt = this.heldAccept?.at;
    let resultJson: string;
    try {
      resultJson = JSON.stringify(frame.result ?? null);
    } catch {
      this.writeHeldAccept();
      return this.violation(session, `completeJson for ${frame.jobId}: result is not JSON`);
    }
    const store = (held: number) => this.jobs.complete(frame.jobId, session.workerId, held, { type: 'json', json: resultJson }, now, acceptedAt);
    // A worker already known at zero failures leaves the result one guarded statement, atomic on
    // its own: no savepoint around it (SAVEPOINT + RELEASE were ~4.5 µs of every job's ~210).
    const done =
      attempt !== undefined &&
      (this.workers.failuresKnownZero(session.workerId)
        ? store(attempt)
        : this.ports.sql.transaction(() => {
            if (!store(attempt)) return false;
            this.workers.resetFailures(session.workerId);
            return true;
          }));
    if (!done) {
      this.writeHeldAccept();
      this.dropStaleClaim(session, frame.jobId, attempt);
      return this.refuseStale(session, frame.jobId, attempt, 'completeJson');
    }
    this.heldAccept = undefined;
    this.sendFrame(session, { type: 'completeAck', jobId: frame.jobId, attempt });
    this.claimEnded(session, frame.jobId);
  }

  private onFail(session: Session, frame: FailFrame): void {
    const claim = session.held.get(frame.jobId);
    const attempt = this.attemptFor(session, frame.jobId, frame.attempt);
    if (claim?.released) {
      // The worker confirms it stopped a job the studio already ended (cancel, expired lease).
      this.sendFrame(session, { type: 'failAck', jobId: frame.jobId, attempt });
      return this.claimEnded(session, frame.jobId);
    }
    const ending: ClaimEnding =
      frame.code === 'handed_back' || frame.code === 'cancelled'
        ? { kind: 'handed_back', error: frame.error }
        : { kind: 'failed', retryable: frame.retryable, error: frame.error };
    const ended = attempt !== undefined && this.endHeldClaim(session.workerId, frame.jobId, attempt, ending);
    if (!ended) {
      this.dropStaleClaim(session, frame.jobId, attempt);
      return this.refuseStale(session, frame.jobId, attempt, 'fail');
    }
    this.sendFrame(session, { type: 'failAck', jobId: frame.jobId, attempt });
    if (ending.kind === 'failed') this.countWorkerFailure(session);
    this.claimEnded(session, frame.jobId);
  }

  private onLogBatch(session: Session, frame: LogBatchFrame): void {
    if (frame.entries.length === 0) return;
    const now = this.now();
    // The original's batch has no count limit: keep the first entries and say how many were dropped.
    const dropped = Math.max(0, frame.entries.length - MAX_LOG_BATCH_ENTRIES);
    const entries = dropped === 0 ? frame.entries : frame.entries.slice(0, MAX_LOG_BATCH_ENTRIES);
    if (dropped > 0) {
      entries.push({ ts: iso(now), level: 'warn', category: 'logs', message: `studio kept the first ${MAX_LOG_BATCH_ENTRIES} entries of a batch of ${frame.entries.length}; dropped ${dropped}` });
      this.log.warn({ op: 'worker_logs', workerId: session.workerId, received: frame.entries.length, dropped }, 'log batch over the entry limit; dropped the rest');
    }
    this.stores.workerLogs.append(session.workerId, entries, now);
  }

  // ------------------------------------------------------------------ binary results (HTTP)

  /**
   * The one check of a result upload, made before its body is read: this worker holds the job's
   * current attempt (and it is `attempt`, when the worker said which — an original worker does not
   * until its multipart fields arrive, so the route asks again with the field's value, which costs no
   * read of the job when nothing changed). What could change while the file streams in — a lease
   * running out, a cancel — is caught by the guarded statement in `completeFile`, not by reading again.
   */
  checkUpload(workerId: string, jobId: string, attempt: number | undefined, held?: { attempt: number }): Result<{ attempt: number }> {
    if (held) {
      return attempt === undefined || attempt === held.attempt ? ok(held) : fail(409, 'stale_attempt', `job ${jobId} is at attempt ${held.attempt}; the result for attempt ${attempt} was not stored`);
    }
    const row = this.jobs.get(jobId);
    if (!row) return fail(404, 'unknown_job', `job ${jobId} does not exist`);
    if ((row.status !== 'claimed' && row.status !== 'running') || row.worker_id !== workerId) {
      return fail(409, 'stale_attempt', `job ${jobId} is not claimed by worker ${workerId} (it is ${row.status}); the result was not stored`);
    }
    return this.checkUpload(workerId, jobId, attempt, { attempt: row.attempt });
  }

  /**
   * The host stored an uploaded file for the attempt `checkUpload` found: make it the job's result
   * in one guarded statement, which refuses (409) when the claim ended while the file streamed in.
   */
  completeFile(workerId: string, jobId: string, attempt: number, file: UploadedResult): Result<{ attempt: number }> {
    const now = this.now();
    const done = this.ports.sql.transaction(() => {
      if (!this.jobs.complete(jobId, workerId, attempt, { type: 'file', file: file.fileName, ext: file.ext, bytes: file.bytes }, now)) return false;
      this.workers.resetFailures(workerId);
      return true;
    });
    if (!done) return fail(409, 'stale_attempt', `job ${jobId} is no longer at attempt ${attempt} of worker ${workerId} (its lease ran out or it was cancelled while the file was uploading); the result was not stored`);
    const session = this.byWorker.get(workerId);
    if (session) this.claimEnded(session, jobId);
    else this.publishJob(jobId);
    return ok({ attempt });
  }

  // ------------------------------------------------------------------ jobs (from the API)

  /** A job was inserted: offer it to the longest-idle worker that can run it. Answers the claim if it was offered. */
  jobQueued(job: JobTraits): ClaimMade | undefined {
    this.publishJob(job.id);
    return this.dispatch(job);
  }

  /** The operator cancelled a job that a worker may be running. */
  jobCancelled(jobId: string, previousWorkerId: string | null, attempt: number): void {
    const session = previousWorkerId ? this.byWorker.get(previousWorkerId) : undefined;
    const claim = session?.held.get(jobId);
    if (session && claim) {
      claim.released = true;
      this.changedOutside.add(session.connId);
      if (session.features.has('cancel')) this.sendCancel(session, jobId, attempt, 'cancelled by operator');
    }
    this.publishJob(jobId);
  }

  // ------------------------------------------------------------------ periodic work

  /** Called about once a second by the host (a timer, or a Durable Object alarm). */
  tick(): void {
    const now = this.now();
    this.reorder();
    this.sweepLeases(now);
    this.closeSilentGreeters(now);
    for (const session of this.byHeartbeat) {
      if (now - session.lastHeartbeatAt <= this.opts.staleSessionMs) break; // least recent first: the rest are fresher
      this.log.warn({ op: 'session', workerId: session.workerId, silentMs: now - session.lastHeartbeatAt }, 'no heartbeat; closing the session');
      this.ports.channel.close(session.connId, 1000, 'no heartbeat');
      this.connectionClosed(session.connId, 1000, 'no heartbeat');
    }
    this.takeBackUnansweredOffers(now);
    // Jobs whose retry backoff ran out since the last look: offer them to idle workers.
    const due = this.jobs.becameDue(this.lastDueCheck, now);
    this.lastDueCheck = now;
    if (due) for (const session of [...this.idle]) this.offerNextFor(session);
  }

  /**
   * When `tick` next has something to do (epoch ms; undefined: nothing pending), for a host that
   * sleeps until then (a Durable Object alarm): the first lease to run out, the first unanswered
   * offer to take back, the hello deadline of the oldest silent socket, the stale deadline of the
   * least recent heartbeat, and (when a session is idle) the next backed-off job to come due. A few
   * index reads: cheap enough to ask after every request or message. Never earlier than `now`.
   */
  nextWakeAt(now = this.now()): number | undefined {
    this.reorder();
    let next = Number.POSITIVE_INFINITY;
    const { lease, offeredAt } = this.jobs.heldDeadlines();
    // The sweeps act on deadlines strictly in the past: one millisecond after each.
    if (lease !== undefined) next = Math.min(next, lease + 1);
    if (offeredAt !== undefined) next = Math.min(next, offeredAt + this.opts.offerAnswerMs + 1);
    for (const session of this.greeting) {
      next = Math.min(next, session.connectedAt + this.opts.helloTimeoutMs + 1);
      break; // oldest first
    }
    for (const session of this.byHeartbeat) {
      next = Math.min(next, session.lastHeartbeatAt + this.opts.staleSessionMs + 1);
      break; // least recent first
    }
    if (this.idle.size > 0) {
      const due = this.jobs.nextDueAfter(this.lastDueCheck);
      if (due !== undefined) next = Math.min(next, due);
    }
    return next === Number.POSITIVE_INFINITY ? undefined : Math.max(next, now);
  }

  /** Restores add sessions in any order; the sweeps read the ordered sets from the head. */
  private reorder(): void {
    if (!this.unordered) return;
    this.unordered = false;
    sortSessions(this.greeting, (s) => s.connectedAt);
    sortSessions(this.byHeartbeat, (s) => s.lastHeartbeatAt);
  }

  /** Sockets that never said hello in time (a stranger holding a socket open, a stuck peer) are closed. */
  private closeSilentGreeters(now: number): void {
    for (const session of this.greeting) {
      if (now - session.connectedAt <= this.opts.helloTimeoutMs) break; // oldest first: the rest are younger
      this.log.warn({ op: 'session', workerId: session.workerId, connId: session.connId }, 'no hello in time; closing the socket');
      this.sendFrame(session, { type: 'error', code: 'protocol_violation', message: `send hello within ${Math.round(this.opts.helloTimeoutMs / 1000)} s of connecting` });
      this.ports.channel.close(session.connId, closeCodeForError('protocol_violation'), 'no hello in time');
      this.connectionClosed(session.connId, closeCodeForError('protocol_violation'), 'no hello in time');
    }
  }

  /** Requeue every claim whose lease ran out: crashed workers, vanished sessions, a studio restart. */
  sweepLeases(now = this.now()): number {
    let swept = 0;
    for (const row of this.jobs.expiredLeases(now)) {
      const workerId = row.worker_id ?? '';
      const ended = this.endHeldClaim(workerId, row.id, row.attempt, {
        kind: 'lost',
        error: `lease expired: no heartbeat from worker ${workerId} for ${Math.round(this.opts.leaseMs / 1000)} s`,
      });
      if (!ended) continue;
      swept++;
      const session = this.byWorker.get(workerId);
      const claim = session?.held.get(row.id);
      if (session && claim) {
        // Alive but silent about this job: stop it there, it is somebody else's now.
        claim.released = true;
        this.changedOutside.add(session.connId);
        this.sendCancel(session, row.id, row.attempt, 'lease expired');
      }
    }
    if (swept > 0) this.log.warn({ op: 'lease', swept }, 'requeued claims whose lease expired');
    return swept;
  }

  /** Offers still unanswered after `offerAnswerMs` go back to the queue (see the option). */
  private takeBackUnansweredOffers(now: number): void {
    for (const row of this.jobs.unansweredOffers(now - this.opts.offerAnswerMs)) {
      const workerId = row.worker_id ?? '';
      const ended = this.endHeldClaim(workerId, row.id, row.attempt, {
        kind: 'handed_back',
        error: `worker ${workerId} did not answer the offer within ${Math.round(this.opts.offerAnswerMs / 1000)} s`,
      });
      const session = this.byWorker.get(workerId);
      const claim = session?.held.get(row.id);
      if (!ended || !session || !claim) continue;
      claim.released = true;
      // A worker that ignores offers is unwell: give it a rest, and stop the job there if it runs after all.
      session.holdUntil = now + this.opts.rejectHoldMs;
      this.changedOutside.add(session.connId);
      this.sendCancel(session, row.id, row.attempt, 'the offer was not answered in time');
      this.log.warn({ op: 'offer', workerId, jobId: row.id }, 'took back an offer the worker did not answer');
    }
  }

  /** Keep the newest `logLinesPerWorker` lines per worker. */
  pruneLogs(): void {
    this.stores.workerLogs.prune(this.opts.logLinesPerWorker);
  }

  // ------------------------------------------------------------------ workers (admin)

  session(workerId: string): Session | undefined {
    return this.byWorker.get(workerId);
  }

  sessionCount(): number {
    return this.byWorker.size;
  }

  /** Welcomed sessions that could run a job of this kind, engine and VRAM estimate (paused ones too). */
  workersAbleToRun(kind: string, engine: string, vramGbEstimate: number): number {
    return this.availability({ kind, source: { engine, files: [] }, vramGbEstimate }).workersOnline;
  }

  /**
   * Online workers that can run this model now (paused ones too) and, when there are none, why not
   * (the dashboard's "why no worker"): no engine, too little VRAM, or only original workers whose
   * parser cannot read the model's engine or file roles.
   */
  availability(model: { kind: string; source: Pick<ModelSource, 'engine' | 'files'>; vramGbEstimate: number }): { workersOnline: number; waitingReason?: string } {
    const { kind, vramGbEstimate } = model;
    const engine = model.source.engine;
    let able = 0;
    let withEngine = 0;
    let original = 0;
    for (const session of this.byWorker.values()) {
      if (!session.welcomed || !session.capabilities) continue;
      if (!enginesByKind(session.capabilities).get(kind as never)?.has(engine)) continue;
      withEngine++;
      if (!session.kindEngineSet.has(`${kind} ${engine}`) || (!session.features.has('extended-offers') && originalIncompatibility(model.source))) {
        original++;
        continue;
      }
      if ((session.capabilities.vramThresholdGb ?? 0) >= vramGbEstimate) able++;
    }
    if (able > 0) return { workersOnline: able };
    let waitingReason = `No online worker runs the "${engine}" engine for ${kind} jobs yet: jobs wait in the queue until one connects.`;
    if (original > 0) {
      waitingReason = `${original} online worker${original > 1 ? 's run' : ' runs'} the "${engine}" engine but speak${original > 1 ? '' : 's'} the original protocol, which cannot carry this model: ${originalIncompatibility(model.source) ?? 'unknown reason'}. Jobs wait until a worker that announces "extended-offers" connects.`;
    } else if (withEngine > 0) {
      waitingReason = `${withEngine} online worker${withEngine > 1 ? 's run' : ' runs'} the "${engine}" engine, but none accepts jobs needing ${vramGbEstimate} GB of VRAM (raise its VRAM threshold).`;
    }
    return { workersOnline: 0, waitingReason };
  }

  /** Close a deleted worker's session for good and hand its claims back. */
  workerDeleted(workerId: string): void {
    const session = this.byWorker.get(workerId);
    for (const claim of this.jobs.heldBy(workerId)) {
      this.endHeldClaim(workerId, claim.id, claim.attempt, { kind: 'handed_back', error: `worker ${workerId} was deleted` });
    }
    if (session) this.refuseAndClose(session, 'worker_deleted', `worker ${workerId} was deleted in the studio; run "studio-worker register --reset" to register again`);
    this.ports.events.enabled && this.ports.events.publish({ type: 'workerRemoved', workerId });
  }

  // ------------------------------------------------------------------ internals

  private now(): number {
    return this.ports.clock.now();
  }

  private sendFrame(session: Session, frame: StudioFrame): void {
    this.ports.channel.send(session.connId, encodeFrame(frameFor(session.features, frame)));
  }

  /**
   * The attempt a worker's frame refers to: the frame's, else (the original worker numbers no
   * attempts) the claim its session holds, else its claim in the store. The one place the studio
   * fills in a missing `attempt`; every handler of a worker frame asks here.
   */
  private attemptFor(session: Session, jobId: string, frameAttempt: number | undefined): number | undefined {
    if (frameAttempt !== undefined) return frameAttempt;
    const held = session.held.get(jobId);
    if (held) return held.attempt;
    const row = this.jobs.get(jobId);
    return row && row.worker_id === session.workerId ? row.attempt : undefined;
  }

  /**
   * A result or answer for a claim that is not current. Peers that know `attempt` get a typed
   * error and keep their session; the original stops for good on any error frame, so it gets a
   * plain ack (its result is dropped either way).
   */
  private refuseStale(session: Session, jobId: string, attempt: number | undefined, what: string): void {
    const row = this.jobs.get(jobId);
    const message = !row
      ? `${what} for unknown job ${jobId}`
      : `${what} for job ${jobId} attempt ${attempt ?? '?'} refused: the job is ${row.status} at attempt ${row.attempt}${row.worker_id && row.worker_id !== session.workerId ? ` on worker ${row.worker_id}` : ''}`;
    this.log.info({ op: 'stale', workerId: session.workerId, jobId, attempt }, message);
    if (session.features.has('attempt')) {
      this.sendFrame(session, { type: 'error', code: row ? 'stale_attempt' : 'unknown_job', message, jobId, attempt });
    } else if (what === 'completeJson') {
      this.sendFrame(session, { type: 'completeAck', jobId });
    } else if (what === 'fail') {
      this.sendFrame(session, { type: 'failAck', jobId });
    }
  }

  /**
   * A refused result or failure ends only the claim it names: the session forgets its claim on that
   * job if it is that very attempt (it is over, whatever the worker thought). A stale frame for an
   * older attempt leaves the current attempt — its slot, its lease — exactly as it was.
   */
  private dropStaleClaim(session: Session, jobId: string, attempt: number | undefined): void {
    const claim = session.held.get(jobId);
    if (!claim || claim.attempt !== attempt) return;
    session.held.delete(jobId);
    this.refreshIdle(session);
  }

  private violation(session: Session, message: string): void {
    session.violations++;
    this.log.warn({ op: 'protocol_violation', workerId: session.workerId, count: session.violations }, message);
    this.sendFrame(session, { type: 'error', code: 'protocol_violation', message });
    if (session.violations >= this.opts.maxViolations) {
      this.ports.channel.close(session.connId, closeCodeForError('protocol_violation'), 'too many protocol violations');
      this.connectionClosed(session.connId, closeCodeForError('protocol_violation'), 'too many protocol violations');
    }
  }

  private refuseAndClose(session: Session, code: ErrorCode, message: string): void {
    this.log.warn({ op: 'session', workerId: session.workerId, code }, message);
    this.sendFrame(session, { type: 'error', code, message });
    this.ports.channel.close(session.connId, closeCodeForError(code), code);
    this.connectionClosed(session.connId, closeCodeForError(code), code);
  }

  private sendCancel(session: Session, jobId: string, attempt: number | undefined, reason: string): void {
    if (!session.features.has('cancel')) return;
    this.sendFrame(session, { type: 'cancel', jobId, attempt, reason });
  }

  /** End a held claim without a result, in one transaction; answers whether it was still held. */
  private endHeldClaim(workerId: string, jobId: string, attempt: number, ending: ClaimEnding): boolean {
    const now = this.now();
    const ended = this.ports.sql.transaction(() => {
      const row = this.jobs.get(jobId);
      if (!row || row.worker_id !== workerId || row.attempt !== attempt || (row.status !== 'claimed' && row.status !== 'running')) return false;
      const decision = decideAfterClaim({ failures: row.failures, losses: row.losses, maxAttempts: row.max_attempts }, ending, this.opts, now);
      if (!this.jobs.endClaim(jobId, workerId, attempt, decision, now)) return false;
      const outcome = ending.kind === 'failed' ? 'failed' : ending.kind;
      this.finishAttempt(row, workerId, outcome, ending.error, now);
      return decision.status;
    });
    if (!ended) return false;
    this.log.info({ op: 'claim', jobId, workerId, attempt, ending: ending.kind, next: ended, error: ending.error }, 'claim ended');
    this.publishJob(jobId);
    if (ended === 'queued') this.dispatchJobId(jobId);
    return true;
  }

  private finishAttempt(row: AttemptTimes | undefined, workerId: string, outcome: 'done' | 'failed' | 'lost' | 'handed_back' | 'cancelled', error: string | null, now: number): void {
    if (!row) return;
    // A result's record is written with it (jobs.complete, by the job-event trigger); this is for claims that end without one.
    this.jobs.recordAttempt(row.id, row.attempt, workerId, row.claimed_at ?? now, row.started_at, outcome, error, now);
  }

  private countWorkerFailure(session: Session): void {
    const failures = this.workers.recordFailure(session.workerId);
    if (failures < this.opts.cooldownAfterFailures) return;
    const until = this.now() + this.opts.cooldownMs;
    this.workers.startCooldown(session.workerId, until);
    session.cooldownUntil = until;
    this.log.warn(
      { op: 'cooldown', workerId: session.workerId, failures, until: iso(until) },
      `worker failed ${failures} jobs in a row; no offers until ${iso(until)}`,
    );
    this.publishWorker(session.workerId);
  }

  /** A claim of this session ended (result stored or given up): free the slot and offer more. */
  private claimEnded(session: Session, jobId: string): void {
    session.held.delete(jobId);
    this.publishJob(jobId);
    this.refreshIdle(session);
    this.offerNextFor(session);
    this.publishWorker(session.workerId);
  }

  private refreshIdle(session: Session): void {
    if (session.welcomed && !session.closed && hasFreeSlot(session)) this.idle.add(session);
    else this.idle.delete(session);
  }

  /** Fill this session's free slots from the queue. */
  private offerNextFor(session: Session): void {
    const now = this.now();
    while (canTakeOffers(session, now) && session.capabilities) {
      if (session.kindEngines.length === 0) break;
      const row = this.jobs.claimNextFor(
        session.workerId,
        session.kindEngines,
        session.capabilities.vramThresholdGb,
        skipList(session, now),
        now,
        now + this.opts.leaseMs,
        session.features.has('split-text-encoders'),
      );
      if (!row) break;
      this.sendOffer(session, row);
    }
    this.refreshIdle(session);
  }

  private dispatchJobId(jobId: string): void {
    const row = this.jobs.get(jobId);
    if (row && row.status === 'queued') {
      this.dispatch({ id: row.id, kind: row.kind, engine: row.engine, vramGbEstimate: row.vram_gb_estimate, needs: featuresNeededBy(JSON.parse(row.model_source) as Parameters<typeof featuresNeededBy>[0]) });
    }
  }

  /** Offer one queued job to the longest-idle session that can run it, if any. */
  private dispatch(job: JobTraits): ClaimMade | undefined {
    const now = this.now();
    // A session that cannot read the job (an original worker) is skipped for it by sendOffer, so
    // the next look finds another one or none.
    for (let session = this.idleSessionFor(job, now); session; session = this.idleSessionFor(job, now)) {
      const leaseExpiresAt = now + this.opts.leaseMs;
      const row = this.jobs.claim(job.id, session.workerId, now, leaseExpiresAt);
      if (!row) return undefined; // not queued (taken, cancelled, or still backing off)
      if (this.offered(session, row)) return { workerId: session.workerId, now, leaseExpiresAt };
    }
    return undefined;
  }

  /**
   * A new job, stored already claimed by the longest-idle worker that can run it (or queued when
   * none can): one INSERT where `insert` + `jobQueued` take an INSERT and an UPDATE. For a single
   * create, the path a job's dispatch latency is measured on. Only a worker that takes offers as
   * stored qualifies (an original peer may not be able to read the job); else the ordinary path.
   */
  insertAndOffer(job: NewJob, needs: readonly string[]): ClaimMade | undefined {
    const now = this.now();
    const traits: JobTraits = { id: job.id, kind: job.kind, engine: job.engine, vramGbEstimate: job.vramGbEstimate, needs };
    const session = this.idleSessionFor(traits, now);
    if (!session || !takesStoredOffer(session.features)) {
      this.jobs.insert(job);
      return this.jobQueued(traits);
    }
    const claim = { workerId: session.workerId, now, leaseExpiresAt: now + this.opts.leaseMs };
    this.jobs.insert(job, claim);
    this.publishJob(job.id);
    this.offered(session, JobStore.offerRowOf(job));
    return claim;
  }

  /** The longest-idle session that may take an offer of this job now. */
  private idleSessionFor(job: JobTraits, now: number): Session | undefined {
    for (const session of this.idle) if (canTakeOffers(session, now) && canRun(session, job, now)) return session;
    return undefined;
  }

  /** After a claim for this session: offer it, and move the session behind the other idle ones. Answers whether it was sent. */
  private offered(session: Session, row: OfferRow): boolean {
    if (!this.sendOffer(session, row)) return false;
    this.refreshIdle(session);
    // Move it to the back: the longest-idle worker goes first next time.
    if (this.idle.delete(session) && hasFreeSlot(session)) this.idle.add(session);
    return true;
  }

  /**
   * Send the offer for a job just claimed for this session. A job the peer's parser cannot read
   * (an original worker and an engine or file role it does not know) goes back to the queue
   * untouched and is skipped for this session: it is never sent. Answers whether it was sent.
   */
  private sendOffer(session: Session, row: OfferRow): boolean {
    const text = takesStoredOffer(session.features) ? encodeOffer(row) : offerTextFor(session.features, row);
    if (text === undefined) {
      const now = this.now();
      this.jobs.unclaim(row.id, session.workerId, row.attempt, now);
      session.skip.set(row.id, Number.POSITIVE_INFINITY);
      this.log.debug({ op: 'offer', workerId: session.workerId, jobId: row.id }, 'job not offered: the worker speaks the original protocol, which cannot carry it');
      return false;
    }
    session.held.set(row.id, { attempt: row.attempt, released: false });
    this.ports.channel.send(session.connId, text);
    this.publishJob(row.id);
    this.publishWorker(session.workerId);
    return true;
  }

  private publishJob(jobId: string): void {
    if (!this.ports.events.enabled) return;
    const row = this.jobs.get(jobId);
    if (row) this.ports.events.publish({ type: 'job', job: jobView(row) });
  }

  publishWorker(workerId: string): void {
    if (!this.ports.events.enabled) return;
    const row = this.workers.get(workerId);
    if (row && row.deleted_at === null) this.ports.events.publish({ type: 'worker', worker: workerView(row, this.byWorker.get(workerId), this.now()) });
  }

  /** Capabilities of a connected worker (for the API). */
  capabilitiesOf(workerId: string): WorkerCapabilities | undefined {
    return this.byWorker.get(workerId)?.capabilities;
  }
}

/**
 * The offer frame, built from the stored JSON text of the task and model source without parsing
 * it again (they were validated when the job was created). Equal to
 * `encodeFrame({type:'offer', claim:{…}})`; a test holds the two together.
 */
export function encodeOffer(row: OfferRow): string {
  return (
    `{"type":"offer","claim":{"jobId":${JSON.stringify(row.id)},"gameId":${JSON.stringify(row.game_id)},` +
    `"assetName":${JSON.stringify(row.asset_name)},"model":${JSON.stringify(row.model)},` +
    `"vramGbEstimate":${row.vram_gb_estimate},"task":${row.task},"modelSource":${row.model_source},"attempt":${row.attempt}}}`
  );
}
