import type { LlmTask } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import { EngineFailure, type EngineAvailability, type EngineContext, type EngineJob } from '../engine.ts';
import { promptProgress, tokenProgress, type LlmBackend } from './backend.ts';
import { requestChatCompletion } from './chat-client.ts';
import type { ChatCompletion } from './chat-completion.ts';
import { buildChatRequest, promptTokenEstimate, serverModelName } from './chat-request.ts';
import type { LlamaCppEngineConfig } from './config.ts';
import { parseJson } from '../shared/http-json.ts';
import { describeNetworkError, displayUrl, getWithTimeout } from './http.ts';

type ApiKey = { ok: true; key: string | undefined } | { ok: false; reason: string };

/** `api_key` wins over `api_key_env`; a named variable that is not set is a configuration error. */
export function resolveApiKey(config: Pick<LlamaCppEngineConfig, 'apiKey' | 'apiKeyEnv'>, env: NodeJS.ProcessEnv): ApiKey {
  if (config.apiKey !== undefined) return { ok: true, key: config.apiKey };
  if (config.apiKeyEnv === undefined) return { ok: true, key: undefined };
  const value = env[config.apiKeyEnv];
  if (value === undefined || value === '') {
    return { ok: false, reason: `api_key_env = "${config.apiKeyEnv}" but that environment variable is not set for the worker` };
  }
  return { ok: true, key: value };
}

/** A running OpenAI-compatible chat server the operator points us at (`server_url`). */
export class ServerBackend implements LlmBackend {
  readonly #config: LlamaCppEngineConfig;
  readonly #base: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #log: Logger;

  constructor(config: LlamaCppEngineConfig & { serverUrl: string }, deps: { env: NodeJS.ProcessEnv; log: Logger }) {
    this.#config = config;
    this.#base = config.serverUrl.replace(/\/+$/, '');
    this.#env = deps.env;
    this.#log = deps.log;
  }

  get #name(): string {
    return displayUrl(this.#base);
  }

  async probe(): Promise<EngineAvailability> {
    const key = resolveApiKey(this.#config, this.#env);
    if (!key.ok) return { available: false, reason: key.reason };
    const url = new URL(`${this.#base}/models`);
    let answer;
    try {
      answer = await getWithTimeout(url, { headers: authHeaders(key.key), timeoutMs: this.#config.probeTimeoutSecs * 1000 });
    } catch (error) {
      return { available: false, reason: `no answer from ${this.#name}/models (${describeNetworkError(error)}): start the server or fix server_url in [engines.llama-cpp]` };
    }
    if (answer.status === 401 || answer.status === 403) {
      return { available: false, reason: `${this.#name} refused the API key (${answer.status}): set api_key or api_key_env in [engines.llama-cpp]` };
    }
    if (answer.status !== 200) {
      return { available: false, reason: `${this.#name}/models answered ${answer.status}: server_url must be the API base of an OpenAI-compatible server, e.g. "http://127.0.0.1:8081/v1"` };
    }
    // llama-server lists its models while it is still loading one (its chat answers 503 until
    // then), so the list is no sign of readiness; its /health is. Other servers have no /health.
    const health = await getWithTimeout(new URL('/health', url), { headers: authHeaders(key.key), timeoutMs: this.#config.probeTimeoutSecs * 1000 }).catch(() => undefined);
    if (health?.status === 503) {
      return { available: false, reason: `${this.#name} is still loading its model (GET /health answered 503); the engine is offered work once it is ready` };
    }
    const models = modelIds(parseJson(answer.text));
    const listed = models.length === 0 ? '' : ` (models: ${models.slice(0, 5).join(', ')}${models.length > 5 ? ', …' : ''})`;
    return { available: true, detail: `OpenAI-compatible server at ${this.#name}${listed}` };
  }

  async complete(job: EngineJob, task: LlmTask, ctx: EngineContext): Promise<ChatCompletion> {
    const key = resolveApiKey(this.#config, this.#env);
    if (!key.ok) throw new EngineFailure('engine_unavailable', key.reason, { retryable: true });
    const model = serverModelName(job.model, job.source);
    this.#log.debug({ op: 'llm', jobId: job.jobId, server: this.#name, serverModel: model }, 'chat request sent');
    promptProgress(ctx, task.maxTokens);
    const call = {
      endpoint: new URL(`${this.#base}/chat/completions`),
      body: buildChatRequest(task, job.source, model),
      resultModel: job.model,
      promptTokenEstimate: promptTokenEstimate(task),
      firstTokenTimeoutMs: this.#config.firstTokenTimeoutSecs * 1000,
      tokenTimeoutMs: this.#config.tokenTimeoutSecs * 1000,
      serverName: this.#name,
      signal: ctx.signal,
      onTokens: tokenProgress(ctx, task.maxTokens),
    };
    return requestChatCompletion(key.key === undefined ? call : { ...call, apiKey: key.key });
  }

  async close(): Promise<void> {}
}

function authHeaders(key: string | undefined): Record<string, string> {
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}

/** `{data: [{id}]}` from GET /models. */
function modelIds(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { data?: unknown }).data)) return [];
  return ((value as { data: unknown[] }).data)
    .map((entry) => (typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined))
    .filter((id): id is string => typeof id === 'string');
}
