import { isLoopbackHost, type TaskKind } from '@studio-worker/protocol';
import type { Logger } from '@studio-worker/log';
import {
  EngineFailure,
  toEngineFailure,
  type Engine,
  type EngineAvailability,
  type EngineContext,
  type EngineJob,
  type EngineResult,
} from '../engine.ts';
import { field, requestJson, type HttpReply } from '../shared/http-json.ts';
import { encodeImageAs, fromBase64 } from '../a1111/image-io.ts';
import { fetchImage } from '../shared/input-images.ts';
import { keySource, resolveApiKey, withoutKey } from './api-key.ts';
import { OpenAIEngineConfig, type OpenAIEngineConfigInput } from './config.ts';
import { buildImagesBody, dialectFrom, describeOpenAIError, resolveServerModel, retryAfterSeconds, type ImagesDialect, type ImagesGenerationBody } from './images-api.ts';

export interface OpenAIEngineDeps {
  log: Logger;
  /** Unused: the server holds its own models. Accepted so every engine factory takes the same deps. */
  modelsRoot?: string;
  /** Where `api_key_env` is looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
}

const BASE_URL_HINT = 'set [engines.openai] base_url to the server\'s API root, e.g. "http://127.0.0.1:8080/v1"';

/**
 * Text-to-image on any server that speaks OpenAI's images API (`POST {base_url}/images/generations`):
 * LocalAI, stable-diffusion.cpp's sd-server, hosted APIs. One request per job; the API has no
 * progress, so the engine reports `generating` when it asks and `encoding` when the bytes arrive.
 * The API key is sent as a bearer token and never logged or quoted in a message.
 */
export class OpenAIEngine implements Engine {
  readonly name = 'openai';
  readonly kinds: readonly TaskKind[] = ['image'];
  readonly #config: OpenAIEngineConfig;
  readonly #env: NodeJS.ProcessEnv;
  /** What the last probe found the server to be, when `dialect` is "auto". */
  #detected: ImagesDialect | undefined;

  constructor(config: OpenAIEngineConfig, deps: OpenAIEngineDeps) {
    this.#config = config;
    this.#env = deps.env ?? process.env;
    if (config.apiKey !== undefined) {
      deps.log.warn({ op: 'openai_config' }, 'the API key is stored in config.toml (api_key); prefer api_key_env, which keeps it out of the file');
    }
    if (config.baseUrl !== undefined && (config.apiKey !== undefined || config.apiKeyEnv !== undefined)) {
      const url = new URL(config.baseUrl);
      if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
        deps.log.warn({ op: 'openai_config', baseUrl: config.baseUrl }, 'the API key travels in clear over plain http to a non-loopback host; prefer https');
      }
    }
  }

  async probe(): Promise<EngineAvailability> {
    const base = this.#config.baseUrl;
    if (base === undefined) return { available: false, reason: `no base_url: ${BASE_URL_HINT}` };
    const key = resolveApiKey(this.#config, this.#env);
    if (!key.ok) return { available: false, reason: key.reason };
    const reply = await requestJson(`${base}/models`, { method: 'GET', headers: authHeaders(key.key), timeoutMs: this.#config.probeTimeoutSecs * 1000 });
    switch (reply.kind) {
      case 'unreachable':
        return { available: false, reason: `cannot reach the OpenAI-compatible server at ${base} (${reply.message}): start it, or ${BASE_URL_HINT}` };
      case 'timeout':
        return { available: false, reason: `the server at ${base} did not answer GET /models within ${reply.afterMs} ms` };
      case 'aborted':
        return { available: false, reason: 'probe aborted' };
    }
    if (reply.status === 401 || reply.status === 403) {
      return { available: false, reason: `the server at ${base} refused the API key (${reply.status}): check ${keySource(this.#config)}` };
    }
    // Some image servers have no model list; reaching them is what matters.
    if (reply.status === 404) return { available: true, detail: `OpenAI-compatible server at ${base} (no /models list)` };
    if (reply.status !== 200) {
      const { message } = describeOpenAIError(reply.json, reply.text);
      return { available: false, reason: `the server at ${base} answered ${reply.status} to GET /models: ${withoutKey(message, key.key)}` };
    }
    const models = field(reply.json, 'data');
    const count = Array.isArray(models) ? `, ${models.length} model${models.length === 1 ? '' : 's'}` : '';
    const dialect = await this.#dialect(reply.json, key.key);
    return { available: true, detail: `OpenAI-compatible server at ${base}${count} (${DIALECT_NAMES[dialect]})` };
  }

  advertisedModels(): Partial<Record<TaskKind, readonly string[]>> {
    return {};
  }

  async run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    const task = job.task;
    if (task.kind !== 'image') {
      throw new EngineFailure('bad_input', `the openai engine cannot serve ${task.kind} tasks (it serves image)`, { retryable: false });
    }
    const inputs = [task.initImageUrl && 'initImageUrl', task.maskUrl && 'maskUrl', task.refImageUrl && 'refImageUrl'].filter(Boolean);
    if (inputs.length > 0) {
      throw new EngineFailure('bad_input', `the openai engine only generates from text (images/generations); it cannot use ${inputs.join(', ')}`, { retryable: false });
    }
    const base = this.#config.baseUrl;
    if (base === undefined) throw new EngineFailure('engine_unavailable', `the openai engine has no base_url: ${BASE_URL_HINT}`, { retryable: false });
    const key = resolveApiKey(this.#config, this.#env);
    if (!key.ok) throw new EngineFailure('engine_unavailable', key.reason, { retryable: false });

    const dialect = this.#config.dialect !== 'auto' ? this.#config.dialect : (this.#detected ?? (await this.#detect(key.key, ctx.signal)));
    const body = buildImagesBody(task, resolveServerModel(job.model, job.source.cliDefaults, this.#config), job.source.cliDefaults, this.#config, dialect);
    const deadline = Date.now() + this.#config.timeoutSecs * 1000;
    const started = Date.now();
    ctx.progress({ phase: 'generating' });
    ctx.log.debug({ op: 'openai_request', url: `${base}/images/generations`, model: body.model, size: body.size, extras: body.steps !== undefined || body.seed !== undefined }, 'image request sent');
    const reply = await requestJson(`${base}/images/generations`, {
      method: 'POST',
      headers: authHeaders(key.key),
      body,
      signal: ctx.signal,
      timeoutMs: this.#config.timeoutSecs * 1000,
    });
    const image = this.#imageFrom(reply, body, key.key, ctx);
    const bytes = image.kind === 'base64' ? fromBase64(image.data) : await this.#download(image.url, key.key, deadline, ctx);
    ctx.progress({ phase: 'encoding' });
    const result = await encodeImageAs(bytes, task.ext, `the server at ${base}`);
    if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
    ctx.log.info({ op: 'openai_request', model: body.model, elapsedMs: Date.now() - started, via: image.kind }, 'image received');
    return { type: 'file', bytes: result.bytes, ext: result.ext };
  }

  /** The configured dialect, or (for "auto") what the model list and GET {origin}/version say. */
  async #dialect(models: unknown, key: string | undefined, signal?: AbortSignal): Promise<ImagesDialect> {
    if (this.#config.dialect !== 'auto') return this.#config.dialect;
    // Asked once: a hosted API is not asked for /version at every probe.
    if (this.#detected !== undefined) return this.#detected;
    const base = new URL(this.#config.baseUrl ?? '');
    const version = await requestJson(`${base.origin}/version`, { method: 'GET', headers: authHeaders(key), timeoutMs: this.#config.probeTimeoutSecs * 1000, ...(signal && { signal }) });
    const dialect = dialectFrom(models, version.kind === 'response' && version.status === 200 ? version.json : undefined);
    // Kept only once the server answered: an unreachable one is asked again next time.
    if (version.kind === 'response') this.#detected = dialect;
    return dialect;
  }

  /** A job before any probe: ask the server what it is (once). */
  async #detect(key: string | undefined, signal: AbortSignal): Promise<ImagesDialect> {
    const reply = await requestJson(`${this.#config.baseUrl}/models`, { method: 'GET', headers: authHeaders(key), timeoutMs: this.#config.probeTimeoutSecs * 1000, signal });
    return this.#dialect(reply.kind === 'response' && reply.status === 200 ? reply.json : undefined, key, signal);
  }

  /** The image an answer carries (inline or by URL), or the failure it means. */
  #imageFrom(reply: HttpReply, body: ImagesGenerationBody, key: string | undefined, ctx: EngineContext): { kind: 'base64'; data: string } | { kind: 'url'; url: string } {
    const base = this.#config.baseUrl ?? '';
    switch (reply.kind) {
      case 'aborted':
        throw toEngineFailure(ctx.signal.reason, ctx.signal);
      case 'timeout':
        throw new EngineFailure('timeout', `the server at ${base} did not answer within ${this.#config.timeoutSecs} s (timeout_secs)`, { retryable: true });
      case 'unreachable':
        throw new EngineFailure('engine_error', `cannot reach the OpenAI-compatible server at ${base} (${reply.message})`, { retryable: true });
    }
    const { status } = reply;
    if (status === 200) {
      const first = field(reply.json, 'data');
      const item = Array.isArray(first) ? first[0] : undefined;
      const b64 = field(item, 'b64_json');
      if (typeof b64 === 'string' && b64 !== '') return { kind: 'base64', data: b64 };
      const url = field(item, 'url');
      if (typeof url === 'string' && url !== '') return { kind: 'url', url };
      throw new EngineFailure('engine_error', `the server at ${base} answered without an image (no data[0].b64_json or data[0].url)`, { retryable: true });
    }
    const said = describeOpenAIError(reply.json, withoutKey(reply.text, key));
    const message = withoutKey(said.message, key);
    if (status === 401 || status === 403) {
      throw new EngineFailure('engine_unavailable', `the server refused the API key (${status}): check ${keySource(this.#config)}`, { retryable: false });
    }
    if (status === 429 || status === 408 || status >= 500) {
      const wait = retryAfterSeconds(reply.headers);
      const after = wait === undefined ? '' : `, retry after ${wait} s`;
      const what = status === 429 ? 'rate limited the request' : 'failed';
      throw new EngineFailure('engine_error', `the server at ${base} ${what} (${status}${after}): ${message}`, { retryable: true });
    }
    // A 404 about the model is the request's fault; any other 404 (OpenAI's "Invalid URL", a bare
    // "Not Found") means the route is not where base_url says.
    if (status === 404 && !isAboutModel(reply.json, said.message)) {
      throw new EngineFailure('engine_unavailable', `the server at ${base} has no /images/generations (404): ${BASE_URL_HINT}`, { retryable: false });
    }
    throw new EngineFailure('bad_input', `the server rejected the request (${status}): ${message}${paramHint(said.param, body)}`, { retryable: false });
  }

  /** A result given by URL: the API key goes along only to the server's own origin. */
  async #download(url: string, key: string | undefined, deadline: number, ctx: EngineContext): Promise<Uint8Array> {
    const base = new URL(this.#config.baseUrl ?? '');
    try {
      const image = await fetchImage(url, {
        what: 'generated image',
        signal: ctx.signal,
        policy: ctx.inputUrls,
        base64DataOnly: true,
        trustedOrigin: base.origin,
        trustedHeaders: authHeaders(key),
        timeoutMs: Math.max(1_000, deadline - Date.now()),
      });
      return image.bytes;
    } catch (error) {
      // The URL came from the server, not from the task: a bad one is the server's failure.
      if (error instanceof EngineFailure && error.code === 'bad_input') {
        throw new EngineFailure('engine_error', `the server at ${base.origin} returned an unusable image URL: ${error.message}`, { retryable: true, cause: error });
      }
      throw error;
    }
  }
}

const DIALECT_NAMES: Record<ImagesDialect, string> = { openai: 'OpenAI images API', localai: 'LocalAI', 'sd-server': 'stable-diffusion.cpp sd-server' };

function isAboutModel(json: unknown, message: string): boolean {
  return field(json, 'error', 'code') === 'model_not_found' || field(json, 'error', 'param') === 'model' || /\bmodel\b/i.test(message);
}

function authHeaders(key: string | undefined): Record<string, string> {
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}

/** Name the field a 4xx is about, and how to stop sending it when it is one the engine adds. */
function paramHint(param: string | undefined, body: ImagesGenerationBody): string {
  if (param === undefined) return '';
  if (param === 'response_format') return ' (response_format: set [engines.openai] response_format = "none" for servers that always answer base64)';
  if (['negative_prompt', 'seed', 'steps', 'step'].includes(param)) return ` (${param}: this server rejects extras; set the model's cliDefaults.sendExtras = false)`;
  if (param === 'size') return ` (size "${body.size}": this server supports only some sizes)`;
  if (param === 'model') return ` (model "${body.model}": set the model's cliDefaults.model or [engines.openai] model)`;
  return ` (${param})`;
}

/** The factory the worker's engine roster calls with the `[engines.openai]` table (camelCase keys). */
export function createOpenAIEngine(config: OpenAIEngineConfigInput, deps: OpenAIEngineDeps): Engine {
  return new OpenAIEngine(OpenAIEngineConfig.parse(config), deps);
}
