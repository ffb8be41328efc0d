import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBody } from '../../helpers/loopback-http.ts';
import { Changes } from '../../helpers/wait.ts';

/**
 * Mimics llama.cpp's llama-server (ggml-org/llama.cpp at 00dd0816: tools/server/server-http.cpp,
 * server-context.cpp, server-common.cpp) and OpenAI's chat completions reference.
 * A faithful fake of an OpenAI-compatible chat server, shaped like llama-server's answers
 * (tools/server: `chat.completion.chunk` events with a role-only first chunk, one token per chunk, a
 * final chunk with `finish_reason`, `usage` and `timings`, then `data: [DONE]`; errors as
 * `{"error": {"code", "message", "type"}}`). Scriptable per test: slow tokens, a dropped connection
 * mid-stream, a stall, silence, error statuses, a non-streaming answer, OpenAI's separate usage chunk.
 */

export interface ChatScript {
  /** The reply, one token per entry. Default: "Hello", ",", " world", "!". */
  reply?: string[];
  /** Reasoning tokens sent (as `reasoning_content`) before the reply. */
  reasoning?: string[];
  /** Delay before each token. */
  tokenDelayMs?: number;
  /** false: answer plain JSON even when the client asks for a stream (servers without streaming). */
  stream?: boolean;
  /** Destroy the connection after this many tokens (the server crashed or the network broke). */
  dropAfterTokens?: number;
  /** Send this many tokens, then nothing more, keeping the connection open. */
  stallAfterTokens?: number;
  /** Send the response headers and never a token. */
  silent?: boolean;
  /** Answer every request with this status and JSON body. */
  error?: { status: number; body: unknown };
  /** Send this error as an SSE event after this many tokens (how llama-server reports a failure mid-stream). */
  errorEvent?: { afterTokens: number; body: unknown };
  /** Where usage goes: llama-server's final chunk (default), OpenAI's separate `choices: []` chunk, or nowhere. */
  usage?: 'final-chunk' | 'separate' | 'none';
  /** `usage.prompt_tokens` the server reports. Default 11. */
  promptTokens?: number;
}

export const DEFAULT_REPLY = ['Hello', ',', ' world', '!'];

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown> | undefined;
}

/** llama-server's 400 when the prompt does not fit (tools/server/utils: exceed_context_size_error). */
export function contextExceededError(promptTokens: number, contextSize: number): { status: number; body: unknown } {
  return {
    status: 400,
    body: {
      error: {
        code: 400,
        message: `request (${promptTokens} tokens) exceeds the available context size (${contextSize} tokens), try increasing it`,
        type: 'exceed_context_size_error',
        n_prompt_tokens: promptTokens,
        n_ctx: contextSize,
      },
    },
  };
}

export function serverError(message: string): { status: number; body: unknown } {
  return { status: 500, body: { error: { code: 500, message, type: 'server_error' } } };
}

export interface OpenAiChatFakeOptions {
  /** The id `/v1/models` lists and answers carry. */
  model?: string;
  /** When set, requests need `Authorization: Bearer <apiKey>` (llama-server --api-key). */
  apiKey?: string;
}

/**
 * The request handler, usable inside any node:http server (fake-llama-server.mjs wraps it with
 * /health and model loading). Emits 'request', 'token' (count), 'disconnect' and 'finished'.
 */
export class OpenAiChatFake extends EventEmitter {
  readonly model: string;
  readonly apiKey: string | undefined;
  readonly requests: RecordedRequest[] = [];
  readonly changes = new Changes();
  script: ChatScript = {};
  /** Requests whose client went away before the answer was complete. */
  disconnects = 0;
  /** Requests answered to the end. */
  finished = 0;
  /** Tokens sent, over all requests. */
  tokensSent = 0;
  #nextId = 1;

  constructor(options: OpenAiChatFakeOptions = {}) {
    super();
    this.model = options.model ?? 'fake-model.gguf';
    this.apiKey = options.apiKey;
  }

  /** Handles the OpenAI routes; returns false for any other path. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const route = path.replace(/^\/v1(?=\/)/, '');
    if (route !== '/models' && route !== '/chat/completions') return false;
    const text = await readBody(req);
    const body = parseBody(text);
    const record: RecordedRequest = { method: req.method ?? 'GET', path, authorization: req.headers.authorization, body };
    this.requests.push(record);
    this.emit('request', record);
    this.changes.signal();
    if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) {
      sendJson(res, 401, { error: { code: 401, message: 'Invalid API Key', type: 'authentication_error' } });
      return true;
    }
    if (route === '/models') {
      sendJson(res, 200, { object: 'list', data: [{ id: this.model, object: 'model', created: now(), owned_by: 'llamacpp', meta: { n_ctx_train: 4096 } }] });
      return true;
    }
    if (req.method !== 'POST' || body === undefined || !Array.isArray(body.messages)) {
      sendJson(res, 400, { error: { code: 400, message: "'messages' is required", type: 'invalid_request_error' } });
      return true;
    }
    await this.#chat(body, res);
    return true;
  }

  async #chat(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const script = this.script;
    if (script.error !== undefined) {
      sendJson(res, script.error.status, script.error.body);
      return;
    }
    let gone = false;
    let dropped = false;
    res.on('close', () => {
      if (res.writableFinished || dropped) return;
      gone = true;
      this.disconnects++;
      this.emit('disconnect');
      this.changes.signal();
    });
    const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : Infinity;
    const reasoning = script.reasoning ?? [];
    const fullReply = script.reply ?? DEFAULT_REPLY;
    // max_tokens counts every generated token, reasoning included.
    const reply = fullReply.slice(0, Math.max(0, maxTokens - reasoning.length));
    const finishReason = reasoning.length + fullReply.length > maxTokens ? 'length' : 'stop';
    const usage = { completion_tokens: reasoning.length + reply.length, prompt_tokens: script.promptTokens ?? 11, total_tokens: reasoning.length + reply.length + (script.promptTokens ?? 11) };
    const id = `chatcmpl-fake${this.#nextId++}`;
    const model = typeof body.model === 'string' ? body.model : this.model;

    if (body.stream !== true || script.stream === false) {
      for (let i = 0; i < reasoning.length + reply.length; i++) await sleep(script.tokenDelayMs ?? 0);
      if (gone) return;
      const message: Record<string, unknown> = { role: 'assistant', content: reply.join('') };
      if (reasoning.length > 0) message.reasoning_content = reasoning.join('');
      sendJson(res, 200, {
        choices: [{ finish_reason: finishReason, index: 0, message }],
        created: now(),
        model,
        system_fingerprint: 'b0000-fake',
        object: 'chat.completion',
        usage,
        id,
        timings: timings(usage),
      });
      this.#finished();
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    if (script.silent === true) return;
    const chunk = (choice: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      choices: [{ finish_reason: null, index: 0, ...choice }],
      created: now(),
      id,
      model,
      system_fingerprint: 'b0000-fake',
      object: 'chat.completion.chunk',
      ...extra,
    });
    send(res, chunk({ delta: { role: 'assistant', content: null } }));
    const tokens = [...reasoning.map((t) => ({ reasoning_content: t })), ...reply.map((t) => ({ content: t }))];
    let sent = 0;
    for (const delta of tokens) {
      await sleep(script.tokenDelayMs ?? 0);
      if (gone) return;
      if (script.stallAfterTokens !== undefined && sent >= script.stallAfterTokens) return;
      if (script.dropAfterTokens !== undefined && sent >= script.dropAfterTokens) {
        dropped = true;
        res.socket?.destroy();
        return;
      }
      if (script.errorEvent !== undefined && sent >= script.errorEvent.afterTokens) {
        send(res, script.errorEvent.body);
        res.end();
        return;
      }
      send(res, chunk({ delta }));
      sent++;
      this.tokensSent++;
      this.emit('token', sent);
      this.changes.signal();
    }
    await sleep(script.tokenDelayMs ?? 0);
    if (gone) return;
    const style = script.usage ?? 'final-chunk';
    send(res, chunk({ finish_reason: finishReason, delta: {} }, style === 'final-chunk' ? { usage, timings: timings(usage) } : {}));
    if (style === 'separate') send(res, { id, object: 'chat.completion.chunk', created: now(), model, choices: [], usage });
    res.write('data: [DONE]\n\n');
    res.end();
    this.#finished();
  }

  #finished(): void {
    this.finished++;
    this.emit('finished');
    this.changes.signal();
  }

  /** Resolves when `check` answers something other than undefined (re-checked on every request, token, disconnect). */
  waitFor<T>(check: () => T | undefined, what: string, timeoutMs?: number): Promise<T> {
    return this.changes.waitFor(check, what, timeoutMs);
  }

  /** The chat requests received so far. */
  chatRequests(): RecordedRequest[] {
    return this.requests.filter((request) => request.path.endsWith('/chat/completions'));
  }
}

/** A standalone fake server on 127.0.0.1 with a random port; `url` ends in /v1 like a real base URL. */
export async function startOpenAiChatServer(options: OpenAiChatFakeOptions = {}): Promise<{ fake: OpenAiChatFake; url: string; server: Server; close(): Promise<void> }> {
  const fake = new OpenAiChatFake(options);
  const server = createServer((req, res) => {
    fake.handle(req, res).then(
      (handled) => {
        if (!handled) sendJson(res, 404, { error: { code: 404, message: 'File Not Found', type: 'not_found_error' } });
      },
      (error: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { code: 500, message: String(error), type: 'server_error' } });
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    fake,
    server,
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, value: unknown): void {
  res.write(`data: ${JSON.stringify(value)}\n\n`);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function parseBody(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function timings(usage: { completion_tokens: number; prompt_tokens: number }) {
  return {
    prompt_n: usage.prompt_tokens,
    prompt_ms: 12.5,
    prompt_per_token_ms: 12.5 / Math.max(1, usage.prompt_tokens),
    prompt_per_second: (usage.prompt_tokens / 12.5) * 1000,
    predicted_n: usage.completion_tokens,
    predicted_ms: 40,
    predicted_per_token_ms: 40 / Math.max(1, usage.completion_tokens),
    predicted_per_second: (usage.completion_tokens / 40) * 1000,
  };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
