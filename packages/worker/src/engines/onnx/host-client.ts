import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@studio-worker/log';
import { entryPointFile } from '../../package-layout.ts';
import { EngineFailure, toEngineFailure } from '../engine.ts';
import type { HostLaunchConfig, HostMessage, HostRequest, ModelFileRef, RuntimeBackend, ValueInfo, WireTensor } from './host-protocol.ts';
import { signalTree } from '../../platform/process-tree.ts';

// host.ts from the sources, dist/onnx-host.js from a built package.
const HOST_SCRIPT = entryPointFile('onnx-host');
const OUTPUT_TAIL_LINES = 20;

export interface HostStartOptions extends HostLaunchConfig {
  startTimeoutMs: number;
  log: Logger;
}

export interface RuntimeInfo {
  version: string;
  backends: RuntimeBackend[];
}

export interface LoadedModel {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** True when this request created the session (false: it was already loaded). */
  fresh: boolean;
  loadMs: number;
}

export interface RequestOptions {
  signal: AbortSignal;
  /** 0 = no limit. */
  timeoutMs: number;
  /** Called when the host starts creating a session from the file. */
  onLoading?: () => void;
}

/** Why the host could not start; the message is what `probe()` shows the operator. */
export class HostStartError extends Error {
  override name = 'HostStartError';
}

/** The host answered a request with an error (the runtime threw); the host itself is fine. */
export class HostRequestError extends Error {
  override name = 'HostRequestError';
}

interface Pending {
  resolve(message: HostMessage): void;
  reject(error: unknown): void;
  onLoading?: () => void;
}

/**
 * The engine's handle on one inference host process. Requests are matched to answers by id. An
 * abort or a watchdog timeout kills the host's whole process group at once (the inference cannot be
 * interrupted any other way); an unexpected exit fails every pending request as a retryable crash
 * carrying the host's last output line.
 */
export class InferenceHost {
  readonly runtime: RuntimeInfo;
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #log: Logger;
  readonly #pending = new Map<number, Pending>();
  readonly #outputTail: string[];
  #nextId = 1;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** Why we killed it, so the exit is not reported as a crash. */
  #killedFor: string | null = null;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, runtime: RuntimeInfo, outputTail: string[], log: Logger) {
    this.#child = child;
    this.pid = child.pid ?? -1;
    this.runtime = runtime;
    this.#outputTail = outputTail;
    this.#log = log;
    this.#exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.#exit) return;
        this.#exit = { code, signal };
        this.#failPending();
        resolve();
      };
      // 'close' comes after the output pipes drained, so the last output line is in the tail.
      child.on('close', finish);
    });
    child.on('message', (message: HostMessage) => this.#onMessage(message));
    this.#idle();
  }

  /** Spawn a host and wait until it has imported the runtime (or failed to). */
  static start(options: HostStartOptions): Promise<InferenceHost> {
    const launch: HostLaunchConfig = {
      runtimeModule: options.runtimeModule,
      executionProviders: options.executionProviders,
      intraOpThreads: options.intraOpThreads,
      maxCachedModels: options.maxCachedModels,
    };
    const child = spawn(process.execPath, [HOST_SCRIPT, JSON.stringify(launch)], {
      // Its own process group, so a kill reaches anything it starts too.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      windowsHide: true,
    });
    const tail: string[] = [];
    collectLines(child, tail, options.log);
    return new Promise<InferenceHost>((resolve, reject) => {
      const fail = (reason: string) => {
        cleanup();
        killGroup(child);
        reject(new HostStartError(reason));
      };
      const onMessage = (message: HostMessage) => {
        if (message.type === 'fatal') return fail(`${options.runtimeModule} failed to load: ${message.message}`);
        if (message.type !== 'ready') return;
        cleanup();
        resolve(new InferenceHost(child, { version: message.version, backends: message.backends }, tail, options.log));
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        fail(`the ONNX host process exited (${exitDescription(code, signal)}) before it was ready${lastLineSuffix(tail)}`);
      };
      const onError = (error: Error) => fail(`the ONNX host process could not start: ${error.message}`);
      const timer = setTimeout(() => fail(`the ONNX host did not load ${options.runtimeModule} within ${options.startTimeoutMs} ms${lastLineSuffix(tail)}`), options.startTimeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('close', onExit);
        child.off('error', onError);
      };
      child.on('message', onMessage);
      child.on('close', onExit);
      child.on('error', onError);
    });
  }

  /** Running and not being killed: a killed host takes no new requests even before it has exited. */
  get alive(): boolean {
    return this.#exit === null && this.#killedFor === null;
  }

  /** Resolves once the process has exited. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  load(model: ModelFileRef, options: RequestOptions): Promise<LoadedModel> {
    return this.#request((id) => ({ type: 'load', id, model }), options).then((message) => {
      if (message.type !== 'loaded') throw new Error(`the ONNX host answered a load with "${message.type}"`);
      return { inputs: message.inputs, outputs: message.outputs, fresh: message.fresh, loadMs: message.loadMs };
    });
  }

  run(
    model: ModelFileRef,
    feeds: Record<string, { dims: number[]; data: Float32Array }>,
    fetches: string[],
    options: RequestOptions,
  ): Promise<{ outputs: Record<string, WireTensor>; runMs: number }> {
    return this.#request((id) => ({ type: 'run', id, model, feeds, fetches }), options).then((message) => {
      if (message.type !== 'result') throw new Error(`the ONNX host answered a run with "${message.type}"`);
      return { outputs: message.outputs, runMs: message.runMs };
    });
  }

  /** SIGKILL the host's process group. Pending requests fail with `reason` (not as a crash). */
  kill(reason: string): void {
    if (!this.alive) return;
    this.#killedFor ??= reason;
    // Keep the event loop until the exit is seen, so `exited` resolves even for an idle host.
    this.#busy();
    killGroup(this.#child);
  }

  #request(build: (id: number) => HostRequest, options: RequestOptions): Promise<HostMessage> {
    const { signal, timeoutMs } = options;
    if (signal.aborted) return Promise.reject(toEngineFailure(signal.reason, signal));
    if (!this.alive) return Promise.reject(this.#goneFailure());
    const id = this.#nextId++;
    return new Promise<HostMessage>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        this.#idle();
      };
      const onAbort = () => {
        settle();
        this.kill('the job was aborted');
        reject(toEngineFailure(signal.reason, signal));
      };
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          settle();
          const seconds = Math.round(timeoutMs / 100) / 10;
          this.kill(`inference watchdog (${seconds} s)`);
          reject(
            new EngineFailure('engine_error', `ONNX inference did not finish within ${seconds} s (inference_timeout_secs); the host was killed`, {
              retryable: true,
            }),
          );
        }, timeoutMs);
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (message) => {
          settle();
          resolve(message);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
        ...(options.onLoading ? { onLoading: options.onLoading } : {}),
      });
      this.#busy();
      this.#child.send(build(id), (error) => {
        if (error) this.#pending.get(id)?.reject(this.#goneFailure());
      });
    });
  }

  #onMessage(message: HostMessage): void {
    if (!('id' in message)) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    if (message.type === 'loading') return pending.onLoading?.();
    if (message.type === 'error') return pending.reject(new HostRequestError(message.message));
    pending.resolve(message);
  }

  #failPending(): void {
    const failure = this.#goneFailure();
    for (const pending of [...this.#pending.values()]) pending.reject(failure);
    if (this.#killedFor === null) {
      this.#log.warn({ op: 'onnx_host', pid: this.pid, exit: this.#exit, output: this.#outputTail.slice(-5) }, 'ONNX host exited unexpectedly');
    }
  }

  #goneFailure(): EngineFailure {
    if (this.#killedFor !== null) {
      return new EngineFailure('engine_error', `the ONNX host was stopped (${this.#killedFor})`, { retryable: true });
    }
    const exit = this.#exit ? exitDescription(this.#exit.code, this.#exit.signal) : 'its channel closed';
    return new EngineFailure('engine_error', `the ONNX host process crashed (${exit})${lastLineSuffix(this.#outputTail)}`, { retryable: true });
  }

  /** An idle host must not keep the daemon (or a test) alive; a busy one must. */
  #idle(): void {
    if (this.#pending.size > 0) return;
    this.#child.unref();
    this.#child.channel?.unref();
  }

  #busy(): void {
    this.#child.ref();
    this.#child.channel?.ref();
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  // Not a group leader (or gone already): kill the process itself.
  if (!signalTree(child.pid, 'SIGKILL')) child.kill('SIGKILL');
}

/** Keep the last lines of the host's stdout/stderr: onnxruntime's own errors land there. */
function collectLines(child: ChildProcess, tail: string[], log: Logger): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) push(line);
    });
    stream.on('end', () => {
      if (partial) push(partial);
      partial = '';
    });
    // A closed pipe must not throw in the daemon.
    stream.on('error', () => {});
  }
  function push(line: string): void {
    const trimmed = line.trim();
    if (!trimmed) return;
    tail.push(trimmed);
    if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    log.debug({ op: 'onnx_host', line: trimmed }, 'host output');
  }
}

function exitDescription(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code ?? 'unknown'}`;
}

/** Lines of a stack dump (Node's native backtrace after an abort, JS frames), not the error itself. */
const TRACE_LINE = /^(\d+: |at |-----|Node\.js v\d)/;

/** The last line the host printed that says what went wrong, skipping the stack dump after it. */
function lastLineSuffix(tail: readonly string[]): string {
  const meaningful = tail.findLast((line) => !TRACE_LINE.test(line)) ?? tail.at(-1);
  return meaningful ? `: ${meaningful}` : '';
}
