import { z } from 'zod';
import { parseJson } from '../shared/http-json.ts';
import type { ApiWorkflow } from './workflow.ts';

/**
 * ComfyUI's HTTP routes (server.py), as far as the engine uses them, with the answers parsed
 * loosely: ComfyUI adds fields between versions and custom nodes add more, so only what we read is
 * checked.
 */

/** The server could not be reached at all: refused, reset, DNS, or no answer in time. */
export class ComfyUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ComfyUnreachable';
  }
}

/** The server answered with a status we did not expect. */
export class ComfyHttpError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(route: string, status: number, body: string) {
    super(`ComfyUI answered HTTP ${status} on ${route}${body ? `: ${body.slice(0, 300)}` : ''}`);
    this.name = 'ComfyHttpError';
    this.status = status;
    this.body = body;
  }
}

/** `POST /prompt` refused the workflow (HTTP 400): ComfyUI's validation result. */
export class ComfyPromptRejected extends Error {
  readonly answer: PromptRejection;
  constructor(answer: PromptRejection) {
    super(describeRejection(answer));
    this.name = 'ComfyPromptRejected';
    this.answer = answer;
  }
}

export const SystemStats = z.looseObject({
  system: z
    .looseObject({
      comfyui_version: z.string().optional(),
      python_version: z.string().optional(),
      pytorch_version: z.string().optional(),
    })
    .optional(),
  devices: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        type: z.string().optional(),
        vram_total: z.number().optional(),
        vram_free: z.number().optional(),
      }),
    )
    .optional(),
});
export type SystemStats = z.infer<typeof SystemStats>;

const PromptAccepted = z.looseObject({
  prompt_id: z.string(),
  number: z.number().optional(),
  node_errors: z.unknown().optional(),
});
export type PromptAccepted = z.infer<typeof PromptAccepted>;

const ValidationError = z.looseObject({
  type: z.string().optional(),
  message: z.string().optional(),
  details: z.string().optional(),
});

const NodeError = z.looseObject({
  errors: z.array(ValidationError).default([]),
  class_type: z.string().optional(),
});

/** `{error, node_errors}`; `error` is a string in old ComfyUI and an object in current ones. */
const PromptRejection = z.looseObject({
  error: z.union([z.string(), ValidationError]).optional(),
  node_errors: z.union([z.record(z.string(), NodeError), z.array(z.unknown())]).optional(),
});
export type PromptRejection = z.infer<typeof PromptRejection>;

/** One output file as ComfyUI lists it (`executed` events and `/history`). */
export const FileRef = z.looseObject({
  filename: z.string(),
  subfolder: z.string().default(''),
  type: z.string().default('output'),
});
export type FileRef = z.infer<typeof FileRef>;

const HistoryEntry = z.looseObject({
  outputs: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  status: z
    .looseObject({
      status_str: z.string().optional(),
      completed: z.boolean().optional(),
      messages: z.array(z.tuple([z.string(), z.unknown()]).rest(z.unknown())).default([]),
    })
    .optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

/** Queue items are tuples `[number, prompt_id, prompt, extra_data, outputs_to_execute, …]`. */
const QueueAnswer = z.looseObject({
  queue_running: z.array(z.array(z.unknown())).default([]),
  queue_pending: z.array(z.array(z.unknown())).default([]),
});

export interface QueueState {
  running: string[];
  pending: string[];
}

export interface QueuePromptBody {
  prompt: ApiWorkflow;
  client_id: string;
  prompt_id: string;
}

export class ComfyApi {
  readonly baseUrl: string;
  readonly #requestTimeoutMs: number;

  constructor(url: string, requestTimeoutMs: number) {
    // A trailing slash makes relative routes land under a reverse proxy's path prefix too.
    this.baseUrl = url.endsWith('/') ? url : `${url}/`;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  /** `ws://…/ws?clientId=…` (wss for https): events for prompts queued with this client id arrive there. */
  wsUrl(clientId: string): string {
    const url = new URL('ws', this.baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('clientId', clientId);
    return url.href;
  }

  async systemStats(signal?: AbortSignal): Promise<SystemStats> {
    return SystemStats.parse(await this.#json('GET', 'system_stats', undefined, signal));
  }

  async queuePrompt(body: QueuePromptBody, signal?: AbortSignal): Promise<PromptAccepted> {
    const response = await this.#request('POST', 'prompt', body, signal);
    const text = await response.text();
    if (response.status === 400) {
      const parsed = PromptRejection.safeParse(parseJson(text));
      throw new ComfyPromptRejected(parsed.success ? parsed.data : { error: text });
    }
    if (!response.ok) throw new ComfyHttpError('POST /prompt', response.status, text);
    const accepted = PromptAccepted.safeParse(parseJson(text));
    if (!accepted.success) throw new ComfyHttpError('POST /prompt', response.status, `unexpected answer ${text.slice(0, 200)}`);
    return accepted.data;
  }

  /** The finished prompt's entry, or undefined while ComfyUI still answers `{}` (queued, running, or unknown). */
  async history(promptId: string, signal?: AbortSignal): Promise<HistoryEntry | undefined> {
    const answer = await this.#json('GET', `history/${encodeURIComponent(promptId)}`, undefined, signal);
    const entry = (answer as Record<string, unknown> | null)?.[promptId];
    if (entry === undefined) return undefined;
    const parsed = HistoryEntry.safeParse(entry);
    if (!parsed.success) throw new ComfyHttpError(`GET /history/${promptId}`, 200, `unexpected history entry: ${parsed.error.message}`);
    return parsed.data;
  }

  async queue(signal?: AbortSignal): Promise<QueueState> {
    const answer = QueueAnswer.parse(await this.#json('GET', 'queue', undefined, signal));
    const ids = (items: unknown[][]) => items.map((item) => item[1]).filter((id): id is string => typeof id === 'string');
    return { running: ids(answer.queue_running), pending: ids(answer.queue_pending) };
  }

  /** `GET /view`: the bytes of one output file. */
  async view(file: FileRef, signal?: AbortSignal): Promise<Uint8Array> {
    const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder, type: file.type });
    const response = await this.#request('GET', `view?${query}`, undefined, signal);
    if (!response.ok) throw new ComfyHttpError(`GET /view?${query}`, response.status, await response.text().catch(() => ''));
    return new Uint8Array(await response.arrayBuffer());
  }

  /** Stops the running prompt; with `prompt_id`, current ComfyUI only stops it if it is that one. */
  async interrupt(promptId: string, signal?: AbortSignal): Promise<void> {
    await this.#ok('POST', 'interrupt', { prompt_id: promptId }, signal);
  }

  /** Removes prompts that are still waiting in the queue (running ones are not touched). */
  async deleteFromQueue(promptIds: string[], signal?: AbortSignal): Promise<void> {
    await this.#ok('POST', 'queue', { delete: promptIds }, signal);
  }

  async deleteHistory(promptIds: string[], signal?: AbortSignal): Promise<void> {
    await this.#ok('POST', 'history', { delete: promptIds }, signal);
  }

  async free(body: { unload_models: boolean; free_memory: boolean }, signal?: AbortSignal): Promise<void> {
    await this.#ok('POST', 'free', body, signal);
  }

  async #ok(method: string, route: string, body: unknown, signal: AbortSignal | undefined): Promise<void> {
    const response = await this.#request(method, route, body, signal);
    const text = await response.text().catch(() => '');
    if (!response.ok) throw new ComfyHttpError(`${method} /${route}`, response.status, text);
  }

  async #json(method: string, route: string, body: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    const response = await this.#request(method, route, body, signal);
    const text = await response.text();
    if (!response.ok) throw new ComfyHttpError(`${method} /${route}`, response.status, text);
    const value = parseJson(text);
    if (value === undefined) throw new ComfyHttpError(`${method} /${route}`, response.status, `not JSON: ${text.slice(0, 200)}`);
    return value;
  }

  async #request(method: string, route: string, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    const timeout = AbortSignal.timeout(this.#requestTimeoutMs);
    const url = new URL(route, this.baseUrl);
    try {
      return await fetch(url, {
        method,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
    } catch (error) {
      // The caller's own abort is not a network problem: let it through as it is.
      if (signal?.aborted) throw signal.reason ?? error;
      if (timeout.aborted) throw new ComfyUnreachable(`ComfyUI at ${this.baseUrl} did not answer ${method} /${route.split('?')[0]} within ${this.#requestTimeoutMs} ms`, { cause: error });
      throw new ComfyUnreachable(`ComfyUI at ${this.baseUrl} is not reachable: ${networkReason(error)}`, { cause: error });
    }
  }
}

/** "connect ECONNREFUSED 127.0.0.1:8188" rather than undici's bare "fetch failed". */
export function networkReason(error: unknown): string {
  const cause = error instanceof Error && error.message === 'fetch failed' && error.cause !== undefined ? error.cause : error;
  // "localhost" resolves to ::1 and 127.0.0.1; both refusals come back as one AggregateError without a message.
  if (cause instanceof AggregateError && cause.message === '' && cause.errors.length > 0) return networkReason(cause.errors[0]);
  if (cause instanceof Error) return cause.message || String((cause as { code?: unknown }).code ?? cause.name);
  return String(cause);
}

/** One line naming every node ComfyUI complained about, e.g. `node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name …`. */
export function describeRejection(answer: PromptRejection): string {
  const parts: string[] = [];
  const nodeErrors = answer.node_errors;
  if (nodeErrors !== undefined && !Array.isArray(nodeErrors)) {
    for (const [id, node] of Object.entries(nodeErrors)) {
      const reasons = node.errors.map((e) => [e.message, e.details].filter(Boolean).join(': ')).filter(Boolean);
      parts.push(`node ${id}${node.class_type ? ` (${node.class_type})` : ''}: ${reasons.join('; ') || 'invalid'}`);
    }
  }
  const error = answer.error;
  const headline = typeof error === 'string' ? error : [error?.message, error?.details].filter(Boolean).join(': ');
  if (parts.length === 0) return headline || 'ComfyUI refused the workflow';
  return `${headline || 'ComfyUI refused the workflow'} — ${parts.join(' | ')}`;
}
