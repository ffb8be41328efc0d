import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { promptForTask } from '@studio-worker/protocol';
import { toPng } from '../../observe/thumbnail.ts';
import type { LocalApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { readJson } from '../http.ts';
import { chatChunk, chatCompletion, ChatRequest, chatTask, imageTask, ImagesRequest, parseRequest, readChatAnswer } from '../openai-shapes.ts';
import type { Reply, RequestContext, Router } from '../router.ts';

/**
 * OpenAI-compatible local generation (`/v1/*`): images and chat completions on the local engines,
 * through the job gate shared with studio jobs. Errors use OpenAI's `{error: {message, type, code}}`.
 */
export function openAiRoutes(router: Router, ctx: LocalApiContext): void {
  router.add('GET', '/v1/models', () => ({
    json: { object: 'list', data: ctx.generation.listModels().map((model) => ({ id: model.id, object: 'model', created: 0, owned_by: 'studio-worker' })) },
  }));
  router.add('POST', '/v1/images/generations', (request) => imagesGenerations(ctx, request));
  router.add('POST', '/v1/chat/completions', (request) => chatCompletions(ctx, request));
}

async function imagesGenerations(ctx: LocalApiContext, { req, signal }: RequestContext): Promise<Reply> {
  const request = parseRequest(ImagesRequest, await readJson(req));
  if (request.response_format === 'url') {
    throw new ApiError(400, 'unsupported_response_format', 'this worker serves images only as b64_json (it keeps no files to link to); leave response_format out or set it to "b64_json"');
  }
  const count = request.n ?? 1;
  // Every task is checked before the engine is taken, so a bad request never holds the gate.
  const tasks = Array.from({ length: count }, (_, index) => imageTask(request, index));
  const model = ctx.generation.resolveModel(request.model, 'image');
  await ctx.generation.checkEngine(model);
  const release = ctx.generation.acquire();
  const data: Array<{ b64_json: string }> = [];
  try {
    for (const task of tasks) {
      const result = await ctx.generation.run(model, task, signal);
      if (result.type !== 'file') throw new ApiError(500, 'engine_error', `the engine answered ${result.type} instead of an image`);
      data.push({ b64_json: (await toPng(result.bytes)).toString('base64') });
    }
  } finally {
    release();
  }
  return { json: { created: Math.floor(Date.now() / 1000), data } };
}

async function chatCompletions(ctx: LocalApiContext, { req, res, signal }: RequestContext): Promise<Reply> {
  const request = parseRequest(ChatRequest, await readJson(req));
  const task = chatTask(request);
  const model = ctx.generation.resolveModel(request.model, 'llm');
  await ctx.generation.checkEngine(model);
  const release = ctx.generation.acquire();
  const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  if (!request.stream) {
    try {
      const result = await ctx.generation.run(model, task, signal);
      if (result.type !== 'json') throw new ApiError(500, 'engine_error', 'the engine answered a file instead of a chat completion');
      return { json: chatCompletion(id, model.id, created, readChatAnswer(result.json, promptForTask(task))) };
    } finally {
      release();
    }
  }
  // Streaming: the engines answer whole, so the content comes as one chunk between the role chunk
  // and the closing chunk (finish_reason and usage). An error after the headers went out arrives as
  // a final `{"error": …}` event.
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  sendEvent(res, chatChunk(id, model.id, created, { role: 'assistant', content: '' }, null));
  try {
    const result = await ctx.generation.run(model, task, signal);
    if (result.type !== 'json') throw new ApiError(500, 'engine_error', 'the engine answered a file instead of a chat completion');
    const answer = readChatAnswer(result.json, promptForTask(task));
    if (answer.reasoning) sendEvent(res, chatChunk(id, model.id, created, { reasoning_content: answer.reasoning }, null));
    sendEvent(res, chatChunk(id, model.id, created, { content: answer.content }, null));
    sendEvent(res, chatChunk(id, model.id, created, {}, answer.finishReason, answer.usage));
    res.end('data: [DONE]\n\n');
  } catch (error) {
    const apiError = error instanceof ApiError ? error : new ApiError(500, 'engine_error', error instanceof Error ? error.message : String(error));
    if (!res.destroyed) {
      sendEvent(res, { error: { message: apiError.message, type: apiError.status >= 500 ? 'server_error' : 'invalid_request_error', code: apiError.code } });
      res.end();
    }
  } finally {
    release();
  }
  return { handled: true };
}

function sendEvent(res: ServerResponse, value: unknown): void {
  if (!res.destroyed) res.write(`data: ${JSON.stringify(value)}\n\n`);
}
