import { spawn, type ChildProcess } from 'node:child_process';
import { basename } from 'node:path';
import type { Logger } from '@studio-worker/log';
import { EngineFailure } from '../engine.ts';
import { signalTree } from '../../platform/process-tree.ts';
import { OutputTail } from './process-tools.ts';

/** What one llama-server is started for; a job with a different spec needs another server. */
export interface LlamaServerSpec {
  modelPath: string;
  contextSize: number;
  /** Multimodal projector (`--mmproj`) for vision models. */
  mmprojPath?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  binary: string;
  spec: LlamaServerSpec;
  extraArgs: readonly string[];
  host: string;
  port: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/** Two specs are the same server when this key matches. */
export function specKey(spec: LlamaServerSpec): string {
  return JSON.stringify([spec.modelPath, spec.contextSize, spec.mmprojPath ?? null]);
}

/** The command line: the model, where to listen, the context size, Jinja templates, then the operator's extras. */
export function llamaServerArgs(spec: LlamaServerSpec, host: string, port: number, extraArgs: readonly string[]): string[] {
  const args = ['-m', spec.modelPath, '--host', host, '--port', String(port), '-c', String(spec.contextSize), '--jinja'];
  if (spec.mmprojPath !== undefined) args.push('--mmproj', spec.mmprojPath);
  return [...args, ...extraArgs];
}

/** llama-server flags whose value is a credential (an operator may pass them in extra_args). */
const SECRET_FLAGS = new Set(['--api-key', '--api-key-file', '--hf-token', '-hft', '--ssl-key-file']);

/** The command line as it may be logged: the value after a credential flag is masked. */
export function loggableArgs(args: readonly string[]): string[] {
  return args.map((arg, i) => (i > 0 && SECRET_FLAGS.has(args[i - 1] ?? '') ? '[redacted]' : arg));
}

/**
 * One running llama-server. It is the leader of its own process group (spawned detached), so
 * stopping it takes down whatever it spawned too; an exit hook does the same if the worker exits
 * without closing the engine.
 */
export class LlamaServerProcess {
  readonly spec: LlamaServerSpec;
  readonly key: string;
  readonly pid: number;
  readonly baseUrl: URL;
  /** stderr: llama-server writes its log and its errors there. */
  readonly stderr = new OutputTail();
  /** Resolves once the process has exited and its output has been read to the end. */
  readonly closed: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  #stopping = false;
  readonly #child: ChildProcess;
  readonly #log: Logger;
  readonly #killOnExit: () => void;

  private constructor(child: ChildProcess, pid: number, options: StartOptions) {
    this.#child = child;
    this.pid = pid;
    this.spec = options.spec;
    this.key = specKey(options.spec);
    this.baseUrl = new URL(`http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}/`);
    this.#log = options.log.child({ llamaServerPid: pid });
    this.#killOnExit = () => signalTree(pid, 'SIGKILL');
    process.once('exit', this.#killOnExit);
    const stdout = new OutputTail(10);
    child.stderr?.setEncoding('utf8');
    child.stdout?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => this.#relay(this.stderr.push(text)));
    child.stdout?.on('data', (text: string) => this.#relay(stdout.push(text)));
    child.stderr?.on('end', () => this.#relay(this.stderr.end()));
    child.on('error', (error) => this.#log.warn({ op: 'llama_server', err: error.message }, 'llama-server process error'));
    child.once('exit', (code, signal) => {
      this.#exit = { code, signal };
      // Whatever it spawned would otherwise outlive it; the group goes with the leader.
      signalTree(pid, 'SIGKILL');
      process.off('exit', this.#killOnExit);
      if (!this.#stopping) {
        this.#log.warn(
          { op: 'llama_server', code, signal, model: basename(this.spec.modelPath), lastLine: this.stderr.lastErrorLine() },
          `llama-server ${this.describeExit()} unexpectedly`,
        );
      }
    });
    this.closed = new Promise((resolve) => child.once('close', (code, signal) => resolve(this.#exit ?? { code, signal })));
  }

  /** Spawns llama-server; rejects with `engine_unavailable` when the binary cannot be started at all. */
  static async start(options: StartOptions): Promise<LlamaServerProcess> {
    const args = llamaServerArgs(options.spec, options.host, options.port, options.extraArgs);
    const child = spawn(options.binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: options.env });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new EngineFailure('engine_unavailable', `cannot start llama-server at ${options.binary}: ${error.code ?? error.message}; fix llama_server in [engines.llama-cpp]`, {
            retryable: true,
            cause: error,
          }),
        ),
      );
    });
    const pid = child.pid;
    if (pid === undefined) throw new EngineFailure('engine_unavailable', `llama-server at ${options.binary} started without a pid`, { retryable: true });
    const server = new LlamaServerProcess(child, pid, options);
    options.log.info({ op: 'llama_server', pid, port: options.port, model: basename(options.spec.modelPath), args: loggableArgs(args) }, 'llama-server started');
    return server;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.#exit;
  }

  /** "exited with code 1", "was killed by SIGKILL", or "is running". */
  describeExit(): string {
    const exit = this.#exit;
    if (exit === undefined) return 'is running';
    return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  }

  /**
   * Stops the whole group: SIGTERM so llama-server can free the GPU cleanly, SIGKILL after
   * `graceMs`, and SIGKILL once more for anything left in the group after the leader is gone.
   */
  async stop(reason: string, graceMs: number): Promise<void> {
    if (!this.#stopping) this.#log.info({ op: 'llama_server', reason, model: basename(this.spec.modelPath) }, `stopping llama-server: ${reason}`);
    this.#stopping = true;
    if (this.running) {
      signalTree(this.pid, 'SIGTERM');
      // A stopped (SIGSTOP) server cannot act on SIGTERM until it runs again.
      signalTree(this.pid, 'SIGCONT');
      const timer = setTimeout(() => signalTree(this.pid, 'SIGKILL'), graceMs);
      await this.closed;
      clearTimeout(timer);
    }
    signalTree(this.pid, 'SIGKILL');
    process.off('exit', this.#killOnExit);
  }

  #relay(lines: string[]): void {
    for (const line of lines) this.#log.debug({ op: 'llama_server' }, line);
  }
}
