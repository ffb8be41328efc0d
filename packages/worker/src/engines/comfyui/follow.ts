import type { ProgressPhase } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, type EngineProgress } from '../engine.ts';
import { ComfyUnreachable, type ComfyApi } from './api.ts';
import type { ComfyEvent } from './events.ts';
import { ComfySocket } from './socket.ts';
import type { ApiWorkflow } from './workflow.ts';
import { sleepOrAbort } from '../../platform/sleep.ts';

export interface FollowOptions {
  api: ComfyApi;
  clientId: string;
  workflow: ApiWorkflow;
  signal: AbortSignal;
  /** The WebSocket said nothing for this long while our prompt was in ComfyUI: ask over HTTP. */
  silenceMs: number;
  /** Our prompt ran this long without an event of its own: it is stuck. */
  stepMs: number;
  /** Opening the WebSocket may take this long. */
  connectTimeoutMs: number;
  progress(update: EngineProgress): void;
  log: Logger;
}

/** How the prompt's end became known. */
export interface FollowEnd {
  via: 'websocket' | 'history';
}

type Stage = 'connecting' | 'queued' | 'running' | 'ended';
type Whereabouts = 'finished' | 'running' | 'pending' | 'gone';

/** Waits between reconnect attempts after the WebSocket drops (about 2 s in all). */
const RECONNECT_DELAYS_MS = [0, 200, 500, 1_000];

/**
 * Follows one prompt from `POST /prompt` to its end over ComfyUI's WebSocket, with two watchdogs:
 * a silent socket (no frame at all for `silenceMs`) is checked over HTTP (`/history/{id}`, `/queue`)
 * and reconnected; a running prompt with no event of its own for `stepMs` is declared stuck. A
 * dropped socket is reconnected under the same client id, then the HTTP check covers the gap.
 */
export class PromptFollower {
  readonly #o: FollowOptions;
  readonly #socket: ComfySocket;
  readonly #ended: Promise<FollowEnd>;
  #resolve!: (end: FollowEnd) => void;
  #reject!: (error: unknown) => void;
  #stage: Stage = 'connecting';
  #promptId: string | undefined;
  /** Events that arrive before ComfyUI has told us the prompt id; replayed once it has. */
  #early: ComfyEvent[] = [];
  #lastNode: string | undefined;
  /** The last sampler step reported, repeated with each preview of that step. */
  #lastStep: EngineProgress | undefined;
  #silenceTimer: NodeJS.Timeout | undefined;
  #stepTimer: NodeJS.Timeout | undefined;
  /** ComfyUI is done with the prompt (finished, failed, interrupted, or forgot it). */
  #endedInComfy = false;
  #startedSeen = false;
  #checking = false;
  #reconnecting: Promise<void> | undefined;
  readonly #onAbort = () => this.#settle({ error: this.#o.signal.reason });

  constructor(options: FollowOptions) {
    this.#o = options;
    this.#socket = new ComfySocket(options.api.wsUrl(options.clientId), {
      event: (event) => this.#onEvent(event),
      lost: (reason) => void this.#onLost(reason),
    });
    this.#ended = new Promise<FollowEnd>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody awaits the end when queueing the prompt fails; that must not be an unhandled rejection.
    this.#ended.catch(() => {});
    options.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Opens the WebSocket. ComfyUI only routes a prompt's events to a socket that exists when it runs. */
  connect(): Promise<void> {
    return this.#socket.connect(this.#o.signal, this.#o.connectTimeoutMs);
  }

  /** ComfyUI accepted the prompt under this id: start watching it. */
  submitted(promptId: string): void {
    if (this.#stage !== 'connecting') return;
    this.#promptId = promptId;
    this.#stage = 'queued';
    this.#o.progress({ phase: 'queued', message: 'queued in ComfyUI' });
    this.#restartSilence();
    const early = this.#early;
    this.#early = [];
    for (const event of early) this.#onEvent(event);
  }

  /** Resolves when the prompt ended in ComfyUI; rejects with an EngineFailure, or the abort reason. */
  ended(): Promise<FollowEnd> {
    return this.#ended;
  }

  /** Whether ComfyUI may still be running or holding our prompt (so a failure should interrupt it). */
  get mayBeLive(): boolean {
    return this.#promptId !== undefined && !this.#endedInComfy;
  }

  /** Whether ComfyUI was seen running the prompt (as opposed to holding it in its queue). */
  get started(): boolean {
    return this.#startedSeen;
  }

  close(): void {
    this.#clearTimers();
    this.#o.signal.removeEventListener('abort', this.#onAbort);
    this.#socket.close();
    if (!this.#isEnded()) this.#settle({ error: new EngineFailure('engine_error', 'the ComfyUI engine was closed while the job ran (worker shutting down)', { retryable: true }) });
  }

  #onEvent(event: ComfyEvent): void {
    if (this.#isEnded()) return;
    if (this.#stage === 'connecting') {
      this.#early.push(event);
      return;
    }
    this.#restartSilence();
    // One client id per run means every prompt event on this socket is ours; the id check guards
    // against anything a proxy or a custom node might fan out.
    if ('promptId' in event && event.promptId !== undefined && event.promptId !== this.#promptId) return;
    switch (event.type) {
      case 'status':
        if (this.#stage === 'queued' && event.queueRemaining !== undefined) {
          this.#o.progress({ phase: 'queued', message: `queued in ComfyUI (${event.queueRemaining} in its queue)` });
        }
        return;
      case 'execution_start':
        this.#running();
        this.#o.progress({ phase: 'loading', message: 'ComfyUI started the prompt' });
        return;
      case 'execution_cached':
        this.#running();
        return;
      case 'executing':
        if (event.node === null) {
          // Without a prompt id this is only trustworthy once our prompt is known to run.
          if (event.promptId !== undefined || this.#stage === 'running') this.#finish('websocket');
          return;
        }
        this.#running();
        this.#lastNode = event.node;
        this.#o.progress({ phase: phaseForNode(this.#classOf(event.node)), message: `node ${this.#describeNode(event.node)}` });
        return;
      case 'progress': {
        this.#running();
        const total = Math.max(0, Math.round(event.max));
        const step = Math.max(0, Math.min(Math.round(event.value), total));
        const node = event.node ?? this.#lastNode;
        this.#lastStep = {
          phase: 'generating',
          step,
          total,
          ...(total > 0 ? { fraction: step / total } : {}),
          message: `${node === undefined ? 'sampling' : `node ${this.#describeNode(node)}`} step ${step}/${total}`,
        };
        this.#o.progress(this.#lastStep);
        return;
      }
      case 'preview':
        // Sent after each step's progress event: the same step, with the picture.
        this.#running();
        this.#o.progress({ ...(this.#lastStep ?? { phase: 'generating' }), preview: { mime: event.mime, bytes: event.bytes } });
        return;
      case 'executed':
        this.#running();
        return;
      case 'execution_success':
        this.#finish('websocket');
        return;
      case 'execution_error':
        this.#endedInComfy = true;
        this.#settle({ error: executionError(event.nodeId, event.nodeType, event.exceptionType, event.exceptionMessage) });
        return;
      case 'execution_interrupted':
        this.#endedInComfy = true;
        // Our own cancel settles through the abort signal first; anything else was someone else's.
        this.#settle({
          error: new EngineFailure(
            'engine_error',
            `ComfyUI interrupted the prompt in node ${this.#describeNode(event.nodeId ?? '?', event.nodeType)} (someone pressed Cancel in ComfyUI, or another client called /interrupt)`,
            { retryable: true },
          ),
        });
        return;
      case 'other':
        return;
    }
  }

  /** A method, not an inline comparison: the stage changes across awaits, which narrowing cannot see. */
  #isEnded(): boolean {
    return this.#stage === 'ended';
  }

  #running(): void {
    this.#startedSeen = true;
    if (this.#stage === 'queued') this.#stage = 'running';
    if (this.#stage === 'running') this.#restartStep();
  }

  #finish(via: FollowEnd['via']): void {
    this.#endedInComfy = true;
    this.#settle({ end: { via } });
  }

  #settle(outcome: { end: FollowEnd } | { error: unknown }): void {
    if (this.#isEnded()) return;
    this.#stage = 'ended';
    this.#clearTimers();
    this.#socket.close();
    if ('end' in outcome) this.#resolve(outcome.end);
    else this.#reject(outcome.error);
  }

  #restartSilence(): void {
    if (this.#stage !== 'queued' && this.#stage !== 'running') return;
    clearTimeout(this.#silenceTimer);
    this.#silenceTimer = setTimeout(() => void this.#check('silence'), this.#o.silenceMs);
  }

  #restartStep(): void {
    clearTimeout(this.#stepTimer);
    this.#stepTimer = setTimeout(() => void this.#check('stall'), this.#o.stepMs);
  }

  #clearTimers(): void {
    clearTimeout(this.#silenceTimer);
    clearTimeout(this.#stepTimer);
    this.#silenceTimer = undefined;
    this.#stepTimer = undefined;
  }

  async #onLost(reason: string): Promise<void> {
    if (this.#isEnded()) return;
    this.#o.log.warn({ op: 'comfyui_ws', promptId: this.#promptId }, `ComfyUI ${reason}; reconnecting`);
    try {
      await this.#reconnect();
    } catch (error) {
      if (this.#o.signal.aborted || this.#isEnded()) return;
      const detail = error instanceof Error ? error.message : String(error);
      this.#settle({ error: new EngineFailure('engine_unavailable', `lost ComfyUI mid-job (${reason}) and could not reconnect: ${detail}`, { retryable: true }) });
      return;
    }
    // Events sent while we were away are gone: the prompt may have finished in the gap.
    if (this.#stage === 'queued' || this.#stage === 'running') void this.#check('reconnected');
  }

  #reconnect(): Promise<void> {
    this.#reconnecting ??= (async () => {
      let lastError: unknown;
      for (const delay of RECONNECT_DELAYS_MS) {
        if (delay > 0) await sleepOrAbort(delay, this.#o.signal);
        if (this.#isEnded()) return;
        try {
          await this.#socket.connect(this.#o.signal, this.#o.connectTimeoutMs);
          return;
        } catch (error) {
          if (this.#o.signal.aborted) throw error;
          lastError = error;
        }
      }
      throw lastError;
    })().finally(() => {
      this.#reconnecting = undefined;
    });
    return this.#reconnecting;
  }

  /**
   * Asks ComfyUI over HTTP where the prompt is. Finished → done (the result comes from the history);
   * gone → retryable failure; stuck (step watchdog) → retryable failure; otherwise the socket may be
   * dead without knowing it, so it is reopened and the watch goes on.
   */
  async #check(why: 'silence' | 'stall' | 'reconnected'): Promise<void> {
    if (this.#checking || this.#isEnded()) return;
    this.#checking = true;
    try {
      const where = await this.#whereabouts();
      if (this.#isEnded()) return;
      this.#o.log.info({ op: 'comfyui_watchdog', promptId: this.#promptId, why, where }, `watchdog (${why}): prompt is ${where}`);
      if (where === 'finished') {
        this.#finish('history');
        return;
      }
      if (where === 'gone') {
        this.#endedInComfy = true;
        this.#settle({
          error: new EngineFailure(
            'engine_error',
            `ComfyUI no longer knows prompt ${this.#promptId} (not queued, not running, no history): it was restarted or its queue was cleared`,
            { retryable: true },
          ),
        });
        return;
      }
      if (where === 'running') this.#running();
      if (why === 'stall' && where === 'running') {
        const node = this.#lastNode === undefined ? 'before its first node' : `in node ${this.#describeNode(this.#lastNode)}`;
        this.#settle({
          error: new EngineFailure('engine_error', `ComfyUI made no progress for ${this.#o.stepMs / 1000} s ${node}; step_timeout_secs gave up on it`, { retryable: true }),
        });
        return;
      }
      if (why === 'silence') await this.#reconnect();
      this.#restartSilence();
    } catch (error) {
      if (this.#o.signal.aborted || this.#isEnded()) return;
      const detail = error instanceof Error ? error.message : String(error);
      const code = error instanceof ComfyUnreachable ? 'engine_unavailable' : 'engine_error';
      this.#settle({ error: new EngineFailure(code, `lost track of the ComfyUI prompt (${why}): ${detail}`, { retryable: true, cause: error }) });
    } finally {
      this.#checking = false;
    }
  }

  async #whereabouts(): Promise<Whereabouts> {
    const id = this.#promptId;
    if (id === undefined) return 'pending';
    const { api, signal } = this.#o;
    if ((await api.history(id, signal)) !== undefined) return 'finished';
    const queue = await api.queue(signal);
    if (queue.running.includes(id)) return 'running';
    if (queue.pending.includes(id)) return 'pending';
    // It may have finished between the two requests.
    return (await api.history(id, signal)) !== undefined ? 'finished' : 'gone';
  }

  #classOf(node: string): string | undefined {
    return this.#o.workflow[node]?.class_type;
  }

  #describeNode(node: string, classType?: string): string {
    const type = classType ?? this.#classOf(node);
    return type === undefined ? node : `${node} (${type})`;
  }
}

/** The failure for ComfyUI's `execution_error` (WebSocket event or history message). */
export function executionError(nodeId: string | undefined, nodeType: string | undefined, exceptionType: string | undefined, message: string): EngineFailure {
  const node = `${nodeId ?? '?'}${nodeType ? ` (${nodeType})` : ''}`;
  return new EngineFailure('engine_error', `ComfyUI failed in node ${node}: ${exceptionType ? `${exceptionType}: ` : ''}${message}`, { retryable: true });
}

/** Which progress phase a node's work belongs to, from its class name. */
export function phaseForNode(classType: string | undefined): ProgressPhase {
  if (classType === undefined) return 'generating';
  if (/Loader|^Load/.test(classType)) return 'loading';
  if (/^VAEDecode|^Save|^Preview|VideoCombine/.test(classType)) return 'encoding';
  return 'generating';
}
