import { basename } from 'node:path';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, toEngineFailure, type EngineContext } from '../engine.ts';
import { getWithTimeout } from './http.ts';
import { LlamaServerProcess, specKey, type LlamaServerSpec } from './llama-server-process.ts';
import { freePort } from '../../platform/free-port.ts';

/** llama-server could not bind the port it was given (server.cpp: "couldn't bind HTTP server socket"). */
const PORT_TAKEN = /couldn't bind|address already in use|EADDRINUSE/i;
const PORT_TRIES = 3;
import { settlesWithin } from '../../platform/sleep.ts';

export interface ResidentServerOptions {
  /** Resolves the llama-server binary (config, models_root/bin, PATH) each time one is started. */
  binary(): Promise<string | undefined>;
  /** Why there is no binary, said the way the probe says it. */
  missingBinaryReason(): string;
  extraArgs: readonly string[];
  /** 0 = a free port each start. */
  port: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
  loadTimeoutMs: number;
  healthTimeoutMs: number;
  /** How often /health is asked while the model loads. */
  pollMs?: number;
  /** SIGTERM → SIGKILL grace when a server is stopped. */
  stopGraceMs?: number;
}

const HOST = '127.0.0.1';

type Health = 'ok' | 'loading' | 'down';

/** A server handed to one request; `release()` when the request is over. */
export interface ServerLease {
  server: LlamaServerProcess;
  release(): void;
}

/**
 * Keeps one llama-server running between jobs: a job for the model it already serves reuses it, a
 * job for another model stops it and starts the next one (one model in memory at a time), and a
 * server that died or stopped answering is replaced. Starts are serialised, so two jobs never race
 * to start two servers.
 */
export class ResidentLlamaServer {
  readonly #options: ResidentServerOptions;
  #current: LlamaServerProcess | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** Requests running on the current server; a switch to another model waits for them. */
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(options: ResidentServerOptions) {
    this.#options = options;
  }

  /** The server now running (or loading), if any. */
  get current(): LlamaServerProcess | undefined {
    return this.#current?.running === true ? this.#current : undefined;
  }

  /**
   * A ready server for `spec`, reused or started (reporting `loading` progress while it loads),
   * leased to one request: a switch to another model waits until the leases are released.
   */
  async acquire(spec: LlamaServerSpec, ctx: Pick<EngineContext, 'signal' | 'progress'>): Promise<ServerLease> {
    const server = await this.#exclusive(ctx.signal, () => this.#ensure(spec, ctx));
    this.#inFlight++;
    let released = false;
    return {
      server,
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
        if (this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
      },
    };
  }

  async #ensure(spec: LlamaServerSpec, ctx: Pick<EngineContext, 'signal' | 'progress'>): Promise<LlamaServerProcess> {
    if (this.#closed) throw new EngineFailure('engine_unavailable', 'the llama-cpp engine is shut down', { retryable: true });
    const current = this.#current;
    if (current !== undefined && current.key === specKey(spec) && current.running) {
      const health = await this.#health(current, ctx.signal);
      if (health === 'ok') return current;
      if (health === 'loading') return this.#waitReady(current, ctx);
      await this.#stopCurrent('it stopped answering /health');
    } else if (current !== undefined) {
      if (current.running) await this.#idle(ctx.signal);
      await this.#stopCurrent(current.running ? `switching to ${basename(spec.modelPath)}` : `it ${current.describeExit()}`);
    }
    const binary = await this.#options.binary();
    if (binary === undefined) throw new EngineFailure('engine_unavailable', this.#options.missingBinaryReason(), { retryable: true });
    for (let tries = 1; ; tries++) {
      const port = this.#options.port === 0 ? await freePort(HOST) : this.#options.port;
      const server = await LlamaServerProcess.start({
        binary,
        spec,
        extraArgs: this.#options.extraArgs,
        host: HOST,
        port,
        env: this.#options.env,
        log: this.#options.log,
      });
      this.#current = server;
      try {
        return await this.#waitReady(server, ctx);
      } catch (error) {
        // A port the worker chose can be taken by another program before llama-server binds it
        // (nothing can reserve it): another port, twice at most. A configured port is the operator's.
        const taken = !server.running && PORT_TAKEN.test(server.stderr.lastErrorLine() ?? '');
        if (!taken || this.#options.port !== 0 || tries >= PORT_TRIES) throw error;
        this.#options.log.warn({ op: 'llama_server', port, last: server.stderr.lastErrorLine() }, 'the port chosen for llama-server was taken before it listened; trying another');
        await this.#stopCurrent('its port was taken');
      }
    }
  }

  /** Resolves when no request runs on the current server. */
  #idle(signal: AbortSignal): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return abortable(new Promise<void>((resolve) => this.#idleWaiters.push(resolve)), signal);
  }

  /** Stops the server (daemon shutdown); later jobs are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#stopCurrent('the worker is shutting down');
  }

  async #stopCurrent(reason: string): Promise<void> {
    const server = this.#current;
    this.#current = undefined;
    await server?.stop(reason, this.#options.stopGraceMs ?? 3_000);
  }

  /**
   * Polls /health until it answers 200. llama-server listens before the model is loaded and
   * answers 503 meanwhile; before it listens the connection is refused. Both mean "loading".
   */
  async #waitReady(server: LlamaServerProcess, ctx: Pick<EngineContext, 'signal' | 'progress'>): Promise<LlamaServerProcess> {
    const model = basename(server.spec.modelPath);
    const deadline = Date.now() + this.#options.loadTimeoutMs;
    for (;;) {
      const health = await this.#health(server, ctx.signal);
      // Only our own process's answer counts: when it has exited (say, it could not bind), whatever
      // answered on its port is another program's.
      if (health === 'ok' && server.running) {
        this.#options.log.info({ op: 'llama_server', model, pid: server.pid }, 'llama-server is ready');
        return server;
      }
      if (!server.running) {
        // Let its output drain so the message carries the line that says why.
        await settlesWithin(server.closed, 1_000);
        throw new EngineFailure('engine_error', `llama-server ${server.describeExit()} while loading ${model}: ${server.stderr.lastErrorLine() ?? 'it wrote nothing'}`, {
          retryable: true,
        });
      }
      if (Date.now() > deadline) {
        await this.#stopCurrent(`it did not finish loading ${model} in time`);
        throw new EngineFailure('engine_error', `llama-server did not finish loading ${model} within ${this.#options.loadTimeoutMs / 1000} s (load_timeout_secs)`, {
          retryable: true,
        });
      }
      ctx.progress({ phase: 'loading', message: `llama-server is loading ${model}` });
      await pause(this.#options.pollMs ?? 100, ctx.signal, server.closed);
    }
  }

  async #health(server: LlamaServerProcess, signal: AbortSignal): Promise<Health> {
    if (!server.running) return 'down';
    try {
      const answer = await getWithTimeout(new URL('health', server.baseUrl), { timeoutMs: this.#options.healthTimeoutMs, signal });
      if (answer.status === 200) return 'ok';
      return answer.status === 503 ? 'loading' : 'down';
    } catch (error) {
      if (signal.aborted) throw toEngineFailure(error, signal);
      const code = (error as NodeJS.ErrnoException).code ?? (error as { cause?: NodeJS.ErrnoException }).cause?.code;
      // Not listening yet: a server that just started is still loading.
      return code === 'ECONNREFUSED' && server.running ? 'loading' : 'down';
    }
  }

  /** Runs `task` after every earlier one; giving up the wait (abort) keeps the order for the rest. */
  async #exclusive<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    const previous = this.#queue;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.#queue = previous.then(() => mine);
    try {
      await abortable(previous, signal);
      return await task();
    } finally {
      release();
    }
  }
}

/** Waits `ms`, or less when `wake` settles first; an abort rejects with `cancelled`. */
function pause(ms: number, signal: AbortSignal, wake: Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(toEngineFailure(signal.reason, signal)));
    const timer = setTimeout(() => finish(resolve), ms);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void wake.then(() => finish(resolve));
  });
}

function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(toEngineFailure(signal.reason, signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(toEngineFailure(signal.reason, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
