import { basename, join } from 'node:path';
import type { LlmTask } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, filesOfRole, type EngineAvailability, type EngineContext, type EngineJob } from '../engine.ts';
import { promptProgress, tokenProgress, type LlmBackend } from './backend.ts';
import { ConnectionLost, requestChatCompletion } from './chat-client.ts';
import type { ChatCompletion } from './chat-completion.ts';
import { buildChatRequest, promptTokenEstimate, serverModelName } from './chat-request.ts';
import type { LlamaCppEngineConfig } from './config.ts';
import type { LlamaServerProcess, LlamaServerSpec } from './llama-server-process.ts';
import { expandHome } from '../../config/paths.ts';
import { findExecutable } from './process-tools.ts';
import { ResidentLlamaServer } from './resident-server.ts';
import { settlesWithin } from '../../platform/sleep.ts';

export interface SubprocessDeps {
  log: Logger;
  modelsRoot: string;
  env: NodeJS.ProcessEnv;
}

/** llama-server started by the engine, one resident process for the model of the latest job. */
export class SubprocessBackend implements LlmBackend {
  readonly #config: LlamaCppEngineConfig;
  readonly #deps: SubprocessDeps;
  readonly #server: ResidentLlamaServer;

  constructor(config: LlamaCppEngineConfig, deps: SubprocessDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#server = new ResidentLlamaServer({
      binary: () => this.#binary(),
      missingBinaryReason: () => this.#missingBinaryReason(),
      extraArgs: config.extraArgs,
      port: config.port,
      env: deps.env,
      log: deps.log,
      loadTimeoutMs: config.loadTimeoutSecs * 1000,
      healthTimeoutMs: config.probeTimeoutSecs * 1000,
    });
  }

  async probe(): Promise<EngineAvailability> {
    const binary = await this.#binary();
    if (binary === undefined) return { available: false, reason: this.#missingBinaryReason() };
    const current = this.#server.current;
    const serving = current === undefined ? '' : `, serving ${basename(current.spec.modelPath)} on port ${current.baseUrl.port}`;
    return { available: true, detail: `llama-server at ${binary}${serving}` };
  }

  async complete(job: EngineJob, task: LlmTask, ctx: EngineContext): Promise<ChatCompletion> {
    const { server, release } = await this.#server.acquire(this.#spec(job), ctx);
    promptProgress(ctx, task.maxTokens);
    try {
      return await requestChatCompletion({
        endpoint: new URL('v1/chat/completions', server.baseUrl),
        body: buildChatRequest(task, job.source, serverModelName(job.model, job.source)),
        resultModel: job.model,
        promptTokenEstimate: promptTokenEstimate(task),
        firstTokenTimeoutMs: this.#config.firstTokenTimeoutSecs * 1000,
        tokenTimeoutMs: this.#config.tokenTimeoutSecs * 1000,
        serverName: 'llama-server',
        signal: ctx.signal,
        onTokens: tokenProgress(ctx, task.maxTokens),
      });
    } catch (error) {
      if (error instanceof EngineFailure && error.code === 'engine_error' && !ctx.signal.aborted) throw await explain(error, server);
      throw error;
    } finally {
      release();
    }
  }

  close(): Promise<void> {
    return this.#server.close();
  }

  #spec(job: EngineJob): LlamaServerSpec {
    const model = filesOfRole(job, 'model')[0];
    if (model === undefined) {
      throw new EngineFailure('bad_input', `the model source of "${job.model}" lists no file with role "model" (the GGUF llama-server loads)`, {
        retryable: false,
      });
    }
    const spec: LlamaServerSpec = { modelPath: model.path, contextSize: job.source.cliDefaults.contextSize ?? this.#config.contextSize };
    const mmproj = filesOfRole(job, 'mmproj')[0];
    if (mmproj !== undefined) spec.mmprojPath = mmproj.path;
    return spec;
  }

  /** llama_server when set (and only it), else `<models_root>/bin/llama-server`, else PATH. */
  #binary(): Promise<string | undefined> {
    const configured = this.#config.llamaServer;
    if (configured !== undefined) {
      // A bare name ("llama-server") is looked up on PATH; anything else is a path.
      if (!configured.includes('/') && !configured.includes('\\')) return findExecutable(configured, [], this.#deps.env);
      return findExecutable(configured, [expandHome(configured)], { PATH: '' });
    }
    return findExecutable('llama-server', [join(this.#deps.modelsRoot, 'bin', 'llama-server')], this.#deps.env);
  }

  #missingBinaryReason(): string {
    if (this.#config.llamaServer !== undefined) {
      return `llama-server not found at ${this.#config.llamaServer} (or not executable): fix llama_server in [engines.llama-cpp]`;
    }
    return (
      `llama-server not found in ${join(this.#deps.modelsRoot, 'bin')} or on PATH: set [engines.llama-cpp] llama_server = "/path/to/llama-server", ` +
      'or server_url = "http://127.0.0.1:8081/v1" for a server you run yourself, or mode = "in-process" with node-llama-cpp installed'
    );
  }
}

/**
 * A request that failed while llama-server was ours to watch: when the process died, the job fails
 * with how it died and the line that says why; otherwise its last error line is added as context.
 */
async function explain(failure: EngineFailure, server: LlamaServerProcess): Promise<EngineFailure> {
  // A crash closes the connection a moment before the exit is seen; give the exit that moment.
  if (failure instanceof ConnectionLost) await settlesWithin(server.closed, 1_000);
  const line = server.stderr.lastErrorLine();
  if (!server.running) {
    return new EngineFailure('engine_error', `llama-server ${server.describeExit()} during the request: ${line ?? 'it wrote nothing'}`, {
      retryable: true,
      cause: failure,
    });
  }
  if (line === undefined) return failure;
  return new EngineFailure('engine_error', `${failure.message} (llama-server's last error line: ${line})`, { retryable: true, cause: failure });
}
