import type { Logger } from '@studio-worker/log';
import { EngineFailure, toEngineFailure, type EngineContext } from '../engine.ts';
import { listenArgs, type SdApiRequest } from './args.ts';
import { checkSampler, samplerNames } from '../shared/samplers.ts';
import { httpExchange } from './http.ts';
import { freePort } from '../../platform/free-port.ts';
import { GenerationMonitor } from './monitor.ts';
import { describeExit, GroupChild, type ChildExit } from './process.ts';
import type { WatchdogFire, WatchdogLimits } from './watchdog.ts';
import { sleep, valueWithin } from '../../platform/sleep.ts';

/** What to run for one model. Jobs with the same key share one loaded server. */
/** sd-server could not listen on the port it was given (another program took it after it was chosen). */
const PORT_TAKEN = /address already in use|EADDRINUSE|failed to (listen|bind)/i;
const PORT_TRIES = 3;

export interface ServerSpec {
  key: string;
  /** A short name for logs (the diffusion model's file name). */
  label: string;
  command: string[];
  args: string[];
  env: NodeJS.ProcessEnv;
}

const READY_POLL_MS = 100;
const READY_REQUEST_TIMEOUT_MS = 2_000;

/** One running sd-server: its process, its port, and who listens to its output right now. */
class ResidentServer {
  readonly spec: ServerSpec;
  readonly port: number;
  readonly child: GroupChild;
  /** What GET /sdapi/v1/samplers listed, read once per server. */
  samplers: Promise<string[] | undefined> | undefined;
  #listener: ((line: string) => void) | undefined;

  constructor(spec: ServerSpec, port: number, log: Logger) {
    this.spec = spec;
    this.port = port;
    this.child = new GroupChild(spec.command, [...spec.args, ...listenArgs(port)], {
      env: spec.env,
      onLine: (line, stream) => {
        this.#listener?.(line);
        log.trace({ op: 'sdcpp_output', stream, line }, 'sd-server');
      },
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return !this.child.hasExited;
  }

  listen(listener: ((line: string) => void) | undefined): void {
    this.#listener = listener;
  }
}

type Outcome<T> = { kind: 'done'; value: T } | { kind: 'exit'; exit: ChildExit } | { kind: 'watchdog'; fire: WatchdogFire } | { kind: 'aborted' };

/**
 * Resident mode: one sd-server per model, kept loaded between jobs (one model at a time). A
 * server that exited is restarted on the next job; a job for another model stops the old server
 * first. sd-server cannot interrupt a running generation, so a cancel or a watchdog kills it and
 * the next job starts a fresh one.
 */
export class ResidentServers {
  readonly #log: Logger;
  readonly #limits: WatchdogLimits;
  #server: ResidentServer | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(log: Logger, limits: WatchdogLimits) {
    this.#log = log;
    this.#limits = limits;
  }

  /** The loaded model's label and the server's pid, for status lines and tests. */
  current(): { label: string; pid: number; port: number } | undefined {
    const server = this.#server;
    return server?.alive ? { label: server.spec.label, pid: server.child.pid, port: server.port } : undefined;
  }

  /** Generate one image on the server for `spec`, starting or switching servers as needed. */
  generate(spec: ServerSpec, request: SdApiRequest, ctx: EngineContext): Promise<Uint8Array> {
    // The engine runs one job at a time, but nothing here relies on that.
    const run = this.#queue.then(() => this.#generate(spec, request, ctx));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#stop('worker shutting down');
  }

  async #generate(spec: ServerSpec, request: SdApiRequest, ctx: EngineContext): Promise<Uint8Array> {
    if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
    if (this.#closed) throw new EngineFailure('engine_unavailable', 'the sd-cpp engine is shutting down', { retryable: true });
    const server = await this.#ensure(spec, ctx);
    const sampler = request.body.sampler_name;
    if (typeof sampler === 'string') {
      server.samplers ??= readSamplers(server.url);
      checkSampler(`sd-server (${server.spec.label})`, sampler, await server.samplers);
    }
    return this.#send(server, request, ctx);
  }

  async #ensure(spec: ServerSpec, ctx: EngineContext): Promise<ResidentServer> {
    const existing = this.#server;
    if (existing !== undefined) {
      if (existing.alive && existing.spec.key === spec.key) return existing;
      await this.#stop(existing.alive ? `switching to model ${spec.label}` : `it had exited (${describeExit(await existing.child.exited)}); restarting it`);
    }
    for (let tries = 1; ; tries++) {
      const port = await freePort();
      const server = new ResidentServer(spec, port, this.#log);
      this.#server = server;
      this.#watchIdleExit(server);
      this.#log.info({ op: 'sdcpp_server', pid: server.child.pid, port, model: spec.label }, 'sd-server starting');
      const monitor = new GenerationMonitor(ctx, this.#limits, 'sd-server');
      server.listen((line) => monitor.line(line));
      monitor.start(`starting sd-server for ${spec.label} (loading the model)`);
      try {
        const outcome = await this.#race(server, monitor, ctx, this.#waitReady(server));
        if (outcome.kind === 'done') {
          this.#log.info({ op: 'sdcpp_server', pid: server.child.pid, port, model: spec.label }, 'sd-server ready');
          return server;
        }
        // The port was free when it was chosen, but nothing can reserve it until sd-server binds it:
        // another program may take it first. That is not the model's fault: another port, twice at most.
        if (outcome.kind === 'exit' && tries < PORT_TRIES && PORT_TAKEN.test(server.child.lastLine())) {
          this.#log.warn({ op: 'sdcpp_server', port, last: server.child.lastLine() }, 'the port chosen for sd-server was taken before it listened; trying another');
          await this.#stop('its port was taken');
          continue;
        }
        throw await this.#failure(server, outcome, ctx, 'while loading the model');
      } finally {
        monitor.stop();
        server.listen(undefined);
      }
    }
  }

  async #send(server: ResidentServer, request: SdApiRequest, ctx: EngineContext): Promise<Uint8Array> {
    const monitor = new GenerationMonitor(ctx, this.#limits, 'sd-server');
    server.listen((line) => monitor.line(line));
    const controller = new AbortController();
    monitor.start(`sent to sd-server (${server.spec.label})`);
    try {
      const exchange = httpExchange(`${server.url}${request.route}`, { method: 'POST', json: request.body, signal: controller.signal });
      // A refused connection or a reset is reported by the exit check below when the server died.
      exchange.catch(() => undefined);
      const outcome = await this.#race(server, monitor, ctx, exchange);
      if (outcome.kind !== 'done') {
        controller.abort();
        throw await this.#failure(server, outcome, ctx, 'while generating');
      }
      return readImage(outcome.value.status, outcome.value.body);
    } catch (error) {
      if (error instanceof EngineFailure || ctx.signal.aborted) throw error;
      // The connection broke: if the server died, say how; either way it cannot be trusted now.
      const exit = await valueWithin(server.child.exited, 1_000);
      const why = exit !== undefined ? `sd-server ${describeExit(exit)} while generating: ${server.child.lastLine()}` : `sd-server broke off the request: ${(error as Error).message}`;
      await this.#stop('its connection broke');
      throw new EngineFailure('engine_error', why, { retryable: true, cause: error });
    } finally {
      monitor.stop();
      server.listen(undefined);
    }
  }

  async #race<T>(server: ResidentServer, monitor: GenerationMonitor, ctx: EngineContext, work: Promise<T>): Promise<Outcome<T>> {
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<Outcome<T>>((resolve) => {
      onAbort = () => resolve({ kind: 'aborted' });
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race<Outcome<T>>([
        work.then((value) => ({ kind: 'done', value })),
        server.child.exited.then((exit) => ({ kind: 'exit', exit })),
        monitor.fired.then((fire) => ({ kind: 'watchdog', fire })),
        aborted,
      ]);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Stop the server as the outcome demands and turn the outcome into the error to throw. */
  async #failure(server: ResidentServer, outcome: Exclude<Outcome<unknown>, { kind: 'done' }>, ctx: EngineContext, when: string): Promise<unknown> {
    if (outcome.kind === 'aborted') {
      await this.#stop('the job was aborted and sd-server cannot interrupt a generation');
      return toEngineFailure(ctx.signal.reason, ctx.signal);
    }
    if (outcome.kind === 'watchdog') {
      this.#log.warn({ op: 'sdcpp_watchdog', pid: server.child.pid, watchdog: outcome.fire.name }, outcome.fire.message);
      const last = server.child.lastLine();
      await this.#stop(`the ${outcome.fire.name} watchdog fired`);
      return new EngineFailure('engine_error', `${outcome.fire.message}; sd-server was killed and will be restarted (last output: ${last})`, { retryable: true });
    }
    const message = `sd-server ${describeExit(outcome.exit)} ${when}: ${server.child.lastLine()}`;
    await this.#stop('it exited');
    return new EngineFailure('engine_error', message, { retryable: true });
  }

  async #waitReady(server: ResidentServer): Promise<void> {
    for (;;) {
      if (!server.alive) return new Promise(() => undefined); // the exit wins the race
      try {
        const answer = await httpExchange(`${server.url}/v1/models`, { method: 'GET', timeoutMs: READY_REQUEST_TIMEOUT_MS });
        // Only while our own process lives: after it exited, another program may hold the port.
        if (answer.status === 200 && server.alive) return;
      } catch {
        // Not listening yet.
      }
      await sleep(READY_POLL_MS);
    }
  }

  #watchIdleExit(server: ResidentServer): void {
    void server.child.exited.then((exit) => {
      if (this.#server !== server) return;
      this.#log.warn({ op: 'sdcpp_server', pid: server.child.pid, exit: describeExit(exit), last: server.child.lastLine() }, 'sd-server exited; it is restarted on the next job');
    });
  }

  async #stop(reason: string): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#log.info({ op: 'sdcpp_server', pid: server.child.pid, model: server.spec.label, reason }, 'stopping sd-server');
    await server.child.kill();
  }
}

/** sd-server's `/sdapi/v1/*` answer: `{images: [base64 PNG], parameters, info}` or `{error, message?}`. */
function readImage(status: number, body: Buffer): Uint8Array {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  const record = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  if (status !== 200) {
    const error = [record.error, record.message].filter((part) => typeof part === 'string' && part !== '').join(': ') || body.toString('utf8').slice(0, 300) || 'no body';
    const message = `sd-server answered ${status}: ${error}`;
    // 400 is the server refusing these parameters; they will not work on another attempt either.
    if (status === 400) throw new EngineFailure('bad_input', message, { retryable: false });
    throw new EngineFailure('engine_error', message, { retryable: true });
  }
  const images = record.images;
  const first = Array.isArray(images) ? images.find((image): image is string => typeof image === 'string' && image !== '') : undefined;
  if (first === undefined) throw new EngineFailure('engine_error', 'sd-server answered 200 without an image', { retryable: true });
  return new Uint8Array(Buffer.from(first.replace(/^data:[^,]*,/, ''), 'base64'));
}

/** sd-server's sampler list; undefined when it cannot be read (then the name is sent unchecked). */
async function readSamplers(url: string): Promise<string[] | undefined> {
  try {
    const answer = await httpExchange(`${url}/sdapi/v1/samplers`, { method: 'GET', timeoutMs: READY_REQUEST_TIMEOUT_MS });
    return answer.status === 200 ? samplerNames(JSON.parse(answer.body.toString('utf8'))) : undefined;
  } catch {
    return undefined;
  }
}
