import WebSocket from 'ws';
import {
  closeActionFor,
  CloseCode,
  encodeFrame,
  parseStudioFrame,
  type CancelFrame,
  type ErrorFrame,
  type InFlightJob,
  type JobOfferClaim,
  type ProtocolFeature,
  type StudioFrame,
  type WelcomeFrame,
  type WorkerCapabilities,
  type WorkerFrame,
} from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import type { AdvancedTimings } from '../config/index.ts';
import type { StudioLink } from './link.ts';
import type { LogShipQueue } from './ship-queue.ts';

/** How one connection ended, which decides what the supervisor does next. */
export type SessionEnd =
  | { kind: 'stopped'; reason: string; welcomed: boolean }
  | { kind: 'disconnected'; reason: string; welcomed: boolean }
  | { kind: 'auth_failed'; reason: string; welcomed: boolean }
  /** `displaced`: a newer process took over this worker id (4003); the daemon exits with EXIT_DISPLACED. */
  | { kind: 'fatal'; reason: string; welcomed: boolean; displaced?: true };

/** What a session needs from the rest of the worker. */
export interface SessionHost {
  readonly workerId: string;
  readonly authToken: string;
  readonly log: Logger;
  readonly shipQueue: LogShipQueue;
  timings(): AdvancedTimings;
  /** Rebuilt for every heartbeat, so config and engine changes reach the studio without a reconnect. */
  capabilities(): WorkerCapabilities;
  inFlight(): InFlightJob[];
  currentJobId(): string | undefined;
  linkUp(link: StudioLink): void;
  linkDown(link: StudioLink): void;
  onOffer(claim: JobOfferClaim, link: StudioLink): void;
  onCancel(frame: CancelFrame): void;
  onCompleteAck(jobId: string, attempt?: number): void;
  onFailAck(jobId: string, attempt?: number): void;
  onStaleAttempt(jobId: string, attempt?: number): void;
}

export function duplicateWorkerReason(workerId: string): string {
  return `another process connected with the same worker id (${workerId}), and the studio keeps only the newest; this one exits for good so the two do not take turns. Stop the other one, then restart this daemon`;
}
export const WORKER_DELETED_REASON = 'this worker was deleted in the studio; run `studio-worker register --reset` and restart the daemon to register again';

/** How long a worker-initiated close may take before the socket is simply dropped. */
const CLOSE_TIMEOUT_MS = 2_000;
let nextLinkId = 1;

/**
 * One connection, from `hello` to its end (original-spec §3.2 with our extensions): the welcome
 * gate, then the heartbeat and log pumps, the read-idle timer, and frame dispatch. Nothing a
 * studio sends ends it except auth failures, duplicate/deleted verdicts and the socket closing;
 * unknown and malformed frames are logged and ignored.
 */
export class StudioSession {
  readonly #socket: WebSocket;
  readonly #host: SessionHost;
  readonly #log: Logger;
  #welcomed = false;
  #end: SessionEnd | null = null;
  #link: (StudioLink & { controller: AbortController }) | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  #resolve: ((end: SessionEnd) => void) | null = null;
  #unlistenStop: () => void = () => {};

  readonly #welcomeHook: () => void;

  constructor(socket: WebSocket, host: SessionHost, hooks: { onWelcome?: () => void } = {}) {
    this.#socket = socket;
    this.#host = host;
    this.#log = host.log;
    this.#welcomeHook = hooks.onWelcome ?? (() => {});
  }

  run(stop: AbortSignal): Promise<SessionEnd> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      const socket = this.#socket;
      socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
      socket.on('ping', () => this.#touch());
      socket.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
      socket.on('error', (error) => this.#log.debug({ op: 'session', err: error }, 'socket error'));
      if (stop.aborted) return this.#finish({ kind: 'stopped', reason: 'worker shutting down', welcomed: false });
      const onStop = () => this.#finish({ kind: 'stopped', reason: 'worker shutting down', welcomed: this.#welcomed });
      stop.addEventListener('abort', onStop, { once: true });
      this.#unlistenStop = () => stop.removeEventListener('abort', onStop);
      this.#touch();
      this.#sendRaw({ type: 'hello', authToken: this.#host.authToken, capabilities: this.#host.capabilities(), inFlight: this.#host.inFlight() });
    });
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#end) return;
    this.#touch();
    if (isBinary) {
      this.#log.warn({ op: 'session' }, 'binary frame from the studio ignored (the protocol uses text frames only)');
      return;
    }
    const parsed = parseStudioFrame(rawToString(data));
    if (!parsed.ok) {
      if (parsed.kind === 'unknown_type') this.#log.debug({ op: 'session', frameType: parsed.type }, `unknown frame type "${parsed.type}" ignored`);
      else this.#log.warn({ op: 'session', frameType: parsed.type }, `malformed ${parsed.type ?? ''} frame ignored: ${parsed.message}`);
      return;
    }
    this.#dispatch(parsed.frame);
  }

  #dispatch(frame: StudioFrame): void {
    if (frame.type === 'error') return this.#onError(frame);
    if (!this.#welcomed) {
      if (frame.type === 'welcome') return this.#onWelcome(frame);
      this.#log.warn({ op: 'session', frameType: frame.type }, `discarded a ${frame.type} frame that arrived before welcome`);
      return;
    }
    const link = this.#link;
    if (!link) return;
    switch (frame.type) {
      case 'offer':
        this.#host.onOffer(frame.claim, link);
        return;
      case 'cancel':
        this.#host.onCancel(frame);
        return;
      case 'completeAck':
        this.#host.onCompleteAck(frame.jobId, frame.attempt);
        return;
      case 'failAck':
        this.#host.onFailAck(frame.jobId, frame.attempt);
        return;
      case 'heartbeatAck':
        return;
      case 'welcome':
        this.#log.debug({ op: 'session' }, 'second welcome ignored');
        return;
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    this.#welcomed = true;
    const features = new Set(frame.protocolFeatures ?? []);
    const controller = new AbortController();
    const socket = this.#socket;
    const link = {
      id: nextLinkId++,
      features,
      closed: controller.signal,
      controller,
      send: (out: WorkerFrame) => !controller.signal.aborted && this.#sendRaw(out),
      has: (feature: ProtocolFeature) => features.has(feature),
    };
    this.#link = link;
    this.#log.info(
      { op: 'session', workerId: frame.workerId, serverTime: frame.serverTime, features: [...features] },
      `server welcomed ${frame.workerId} server_time=${frame.serverTime}`,
    );
    const { heartbeatIntervalMs, logFlushMs } = this.#host.timings();
    this.#heartbeat();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), heartbeatIntervalMs);
    this.#flushTimer = setInterval(() => this.#shipLogs(), logFlushMs);
    this.#welcomeHook();
    if (socket.readyState === WebSocket.OPEN) this.#host.linkUp(link);
  }

  #onError(frame: ErrorFrame): void {
    switch (frame.code) {
      case 'auth_failed':
        return this.#finish({ kind: 'auth_failed', reason: `the studio refused the auth token: ${frame.message}`, welcomed: this.#welcomed });
      case 'duplicate_worker':
        return this.#finish({ kind: 'fatal', reason: duplicateWorkerReason(this.#host.workerId), welcomed: this.#welcomed, displaced: true });
      case 'worker_deleted':
        return this.#finish({ kind: 'fatal', reason: WORKER_DELETED_REASON, welcomed: this.#welcomed });
      case 'stale_attempt':
        this.#log.warn({ op: 'session', code: frame.code, jobId: frame.jobId, attempt: frame.attempt }, `studio: stale attempt — ${frame.message}`);
        if (frame.jobId) this.#host.onStaleAttempt(frame.jobId, frame.attempt);
        return;
      default:
        this.#log.warn({ op: 'session', code: frame.code, jobId: frame.jobId }, `studio reported ${frame.code}: ${frame.message}`);
    }
  }

  #onClose(code: number, reason: string): void {
    const welcomed = this.#welcomed;
    if (!this.#end) {
      const action = closeActionFor(code);
      const said = reason ? `: ${reason}` : '';
      if (action === 'reregister') this.#end = { kind: 'auth_failed', reason: `the studio closed the connection with 4001 (auth failed)${said}`, welcomed };
      else if (code === CloseCode.DuplicateWorker) this.#end = { kind: 'fatal', reason: duplicateWorkerReason(this.#host.workerId), welcomed, displaced: true };
      else if (code === CloseCode.WorkerDeleted) this.#end = { kind: 'fatal', reason: WORKER_DELETED_REASON, welcomed };
      else this.#end = { kind: 'disconnected', reason: code === 1006 ? 'connection lost' : `the studio closed the connection (${code}${said})`, welcomed };
      this.#teardown();
    }
    this.#resolve?.(this.#end);
    this.#resolve = null;
  }

  /** Decide how the session ends, stop everything, and close the socket with 1000. */
  #finish(end: SessionEnd, options: { terminate?: boolean } = {}): void {
    if (this.#end) return;
    // Last chance for queued log lines to reach the studio before a deliberate close.
    if (end.kind === 'stopped' && this.#link) this.#shipLogs();
    this.#end = end;
    this.#teardown();
    const socket = this.#socket;
    if (socket.readyState === WebSocket.CLOSED) {
      this.#resolve?.(end);
      this.#resolve = null;
      return;
    }
    if (options.terminate) {
      socket.terminate();
      return;
    }
    socket.close(CloseCode.Normal, closeReason(end));
    setTimeout(() => socket.terminate(), CLOSE_TIMEOUT_MS).unref();
  }

  #teardown(): void {
    this.#unlistenStop();
    for (const timer of [this.#idleTimer, this.#heartbeatTimer, this.#flushTimer]) if (timer) clearTimeout(timer);
    this.#idleTimer = this.#heartbeatTimer = this.#flushTimer = null;
    const link = this.#link;
    if (link) {
      link.controller.abort();
      this.#host.linkDown(link);
      // Whatever the pump had not shipped stays queued for the next session.
    }
  }

  /** Any frame proves the connection alive; silence longer than the read-idle timeout means it is dead. */
  #touch(): void {
    if (this.#end) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    const ms = this.#host.timings().readIdleTimeoutMs;
    this.#idleTimer = setTimeout(() => {
      this.#log.warn({ op: 'session', idleMs: ms }, `no frames from the studio for ${ms} ms; treating the connection as dead`);
      this.#finish({ kind: 'disconnected', reason: `no frames for ${ms} ms`, welcomed: this.#welcomed }, { terminate: true });
    }, ms);
  }

  #heartbeat(): void {
    const currentJobId = this.#host.currentJobId();
    const sent = this.#sendRaw({
      type: 'heartbeat',
      capabilities: this.#host.capabilities(),
      ...(currentJobId === undefined ? {} : { currentJobId }),
      inFlight: this.#host.inFlight(),
    });
    if (!sent && this.#heartbeatTimer) {
      clearInterval(this.#heartbeatTimer);
      this.#heartbeatTimer = null;
    }
  }

  #shipLogs(): void {
    const queue = this.#host.shipQueue;
    if (queue.size === 0 || this.#socket.readyState !== WebSocket.OPEN) return;
    const entries = queue.takeAll();
    const text = encodeFrame({ type: 'logBatch', entries });
    this.#socket.send(text, (error) => {
      if (error) queue.restoreFront(entries);
    });
  }

  #sendRaw(frame: WorkerFrame): boolean {
    if (this.#socket.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(encodeFrame(frame));
    return true;
  }
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** Close reasons are limited to 123 bytes. */
function closeReason(end: SessionEnd): string {
  switch (end.kind) {
    case 'stopped':
      return 'session ended';
    case 'auth_failed':
      return 'auth failed';
    case 'fatal':
      return 'worker stopped';
    case 'disconnected':
      return 'reconnecting';
  }
}
