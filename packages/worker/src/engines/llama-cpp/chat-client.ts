import type { IncomingMessage } from 'node:http';
import { EngineFailure, toEngineFailure } from '../engine.ts';
import { CompletionAssembler, completionFromJson, readServerError, type ChatCompletion } from './chat-completion.ts';
import type { ChatRequestBody } from './chat-request.ts';
import { parseJson } from '../shared/http-json.ts';
import { http } from '../../platform/node-http.ts';
import { describeNetworkError, openRequest, readText } from './http.ts';
import { SseDecoder } from './sse.ts';

export interface ChatCall {
  /** The server's `/chat/completions` URL. */
  endpoint: URL;
  body: ChatRequestBody;
  apiKey?: string;
  /** The `model` reported in the result (the studio's model id). */
  resultModel: string;
  promptTokenEstimate: number;
  firstTokenTimeoutMs: number;
  tokenTimeoutMs: number;
  /** How messages name the server, e.g. "llama-server" or "http://127.0.0.1:8081/v1". */
  serverName: string;
  signal: AbortSignal;
  /** Called with the running token count each time a token arrives. */
  onTokens(tokens: number): void;
}

const MAX_DETAIL_CHARS = 500;

/** The connection dropped or the stream ended early: the server may have crashed (retryable). */
export class ConnectionLost extends EngineFailure {
  constructor(message: string, cause?: unknown) {
    super('engine_error', message, cause === undefined ? { retryable: true } : { retryable: true, cause });
    this.name = 'ConnectionLost';
  }
}

/**
 * One chat completion over HTTP: streamed when the server streams (SSE), plain JSON otherwise.
 * Cancelling `signal` closes the connection, which is how llama-server learns to stop generating.
 * Every failure comes out as an EngineFailure: cancelled, watchdog, HTTP status, lost connection.
 */
export async function requestChatCompletion(call: ChatCall): Promise<ChatCompletion> {
  const watchdog = new TokenWatchdog(call);
  const signal = AbortSignal.any([call.signal, watchdog.signal]);
  const assembler = new CompletionAssembler(call.resultModel, call.promptTokenEstimate);
  const headers: Record<string, string> = { accept: 'text/event-stream, application/json' };
  if (call.apiKey !== undefined) headers.authorization = `Bearer ${call.apiKey}`;
  try {
    const response = await openRequest({ method: 'POST', url: call.endpoint, headers, body: JSON.stringify(call.body), signal });
    const status = response.statusCode ?? 0;
    if (status >= 400) throw failureForStatus(status, await readText(response), call);
    const type = String(response.headers['content-type'] ?? '');
    if (type.includes('text/event-stream')) return await readStream(response, assembler, watchdog, call);
    return readJson(await readText(response), call);
  } catch (error) {
    if (call.signal.aborted) throw toEngineFailure(error, call.signal);
    // A stream that had already finished but never sent [DONE] is still a complete answer.
    if (watchdog.fired && assembler.finished) return assembler.result();
    if (watchdog.fired) throw new EngineFailure('engine_error', watchdog.reason(assembler.tokens), { retryable: true, cause: error });
    if (error instanceof EngineFailure) throw error;
    throw new ConnectionLost(scrub(`lost the connection to ${call.serverName}: ${describeNetworkError(error)}`, call), error);
  } finally {
    watchdog.stop();
  }
}

async function readStream(response: IncomingMessage, assembler: CompletionAssembler, watchdog: TokenWatchdog, call: ChatCall): Promise<ChatCompletion> {
  response.setEncoding('utf8');
  const decoder = new SseDecoder();
  const take = (payloads: string[]): boolean => {
    for (const payload of payloads) {
      if (payload.trim() === '[DONE]') return true;
      const chunk = parseJson(payload);
      if (chunk === undefined) {
        throw new EngineFailure('engine_error', `${call.serverName} sent an event that is not JSON: ${clip(payload)}`, { retryable: true });
      }
      const error = readServerError(chunk);
      if (error !== undefined) throw failureForStatus(error.code ?? 500, JSON.stringify(chunk), call, 'mid-stream');
      if (assembler.add(chunk)) {
        watchdog.tokenArrived();
        call.onTokens(assembler.tokens);
      }
    }
    return false;
  };
  for await (const text of response) {
    if (take(decoder.push(text as string))) {
      response.destroy();
      return assembler.result();
    }
  }
  if (take(decoder.end()) || assembler.finished) return assembler.result();
  throw new ConnectionLost(`the stream from ${call.serverName} ended after ${assembler.tokens} tokens without finishing`);
}

function readJson(text: string, call: ChatCall): ChatCompletion {
  const json = parseJson(text);
  const completion = completionFromJson(json, call.resultModel, call.promptTokenEstimate);
  if (completion === undefined) {
    const error = readServerError(json);
    if (error !== undefined) throw failureForStatus(error.code ?? 500, text, call, 'in its answer');
    throw new EngineFailure('engine_error', `${call.serverName} answered something that is not a chat completion: ${clip(text)}`, { retryable: true });
  }
  call.onTokens(completion.usage.completion_tokens);
  return completion;
}

/**
 * What an HTTP error means for the job: the request itself was wrong (400 — e.g. the prompt does
 * not fit the context) fails for good; a refused key or unknown route means this worker cannot
 * serve the model; rate limits and server errors may pass on another attempt.
 */
export function failureForStatus(status: number, bodyText: string, call: Pick<ChatCall, 'serverName' | 'apiKey'>, where = ''): EngineFailure {
  const detail = scrub(clip(readServerError(parseJson(bodyText))?.message ?? (bodyText.trim() || (http.STATUS_CODES[status] ?? 'no message'))), call);
  const said = `${call.serverName} answered ${status}${where === '' ? '' : ` ${where}`}: ${detail}`;
  if (status === 401 || status === 403) {
    return new EngineFailure('engine_unavailable', `${said} (check api_key / api_key_env in [engines.llama-cpp])`, { retryable: true });
  }
  if (status === 404) {
    return new EngineFailure('engine_unavailable', `${said} (check server_url, which should end in /v1, and the model name)`, { retryable: true });
  }
  if (status === 408 || status === 409 || status === 429 || status >= 500) return new EngineFailure('engine_error', said, { retryable: true });
  return new EngineFailure('bad_input', said, { retryable: false });
}

/** Servers sometimes echo the key back in an error; it never goes further than this. */
function scrub(text: string, call: Pick<ChatCall, 'apiKey'>): string {
  return call.apiKey === undefined || call.apiKey === '' ? text : text.split(call.apiKey).join('[redacted]');
}

function clip(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_DETAIL_CHARS ? `${flat.slice(0, MAX_DETAIL_CHARS)}…` : flat;
}

/**
 * Aborts a request that goes quiet: no first token within `firstTokenTimeoutMs` (prompt processing
 * included), or no next token within `tokenTimeoutMs`.
 */
class TokenWatchdog {
  readonly #controller = new AbortController();
  readonly #call: Pick<ChatCall, 'firstTokenTimeoutMs' | 'tokenTimeoutMs' | 'serverName'>;
  #timer: NodeJS.Timeout | undefined;
  #sawToken = false;
  fired = false;

  constructor(call: Pick<ChatCall, 'firstTokenTimeoutMs' | 'tokenTimeoutMs' | 'serverName'>) {
    this.#call = call;
    this.#arm(call.firstTokenTimeoutMs);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  tokenArrived(): void {
    this.#sawToken = true;
    this.#arm(this.#call.tokenTimeoutMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  reason(tokens: number): string {
    return this.#sawToken
      ? `${this.#call.serverName} sent no token for ${seconds(this.#call.tokenTimeoutMs)} after token ${tokens} (token_timeout_secs); gave up on the request`
      : `${this.#call.serverName} sent no first token within ${seconds(this.#call.firstTokenTimeoutMs)} (first_token_timeout_secs); gave up on the request`;
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.fired = true;
      this.#controller.abort(new Error('token watchdog'));
    }, ms);
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
