import type { CliDefaults, ImageTask } from '@studio-worker/protocol';
import { EngineFailure } from '../engine.ts';
import { excerpt, field } from '../shared/http-json.ts';
import type { OpenAIEngineConfig } from './config.ts';

/** `steps` 20 means "the caller did not choose" (original-spec §6.3). */
const UNCHOSEN_STEPS = 20;

/** The request body of POST /images/generations. */
export interface ImagesGenerationBody {
  model: string;
  prompt: string;
  n: 1;
  size?: string;
  response_format?: 'b64_json' | 'url';
  negative_prompt?: string;
  seed?: number;
  steps?: number;
  /** LocalAI's spelling of `steps`. */
  step?: number;
}

/** The server-side model name: the model's cliDefaults.model, else the table's `model`, else the studio's model id. */
export function resolveServerModel(model: string, cliDefaults: CliDefaults | undefined, config: Pick<OpenAIEngineConfig, 'model'>): string {
  const fromDefaults = cliDefaults?.['model'];
  if (typeof fromDefaults === 'string' && fromDefaults.trim() !== '') return fromDefaults;
  return config.model ?? model;
}

/**
 * Which server speaks, for the values OpenAI's API has no field for:
 * - `openai`: OpenAI's fields only, unless the model's cliDefaults set `sendExtras: true` (then
 *   `negative_prompt`, `seed`, `steps`/`step`): strict servers answer 400 "Unknown parameter".
 * - `localai`: LocalAI reads the negative prompt from `prompt` as `positive|negative` (it ignores
 *   `negative_prompt`), the steps from `step` and `seed` (core/http/endpoints/openai/image.go).
 * - `sd-server`: stable-diffusion.cpp's sd-server reads only prompt/n/size/output_format on this
 *   route; seed, steps and the negative prompt go in `<sd_cpp_extra_args>{json}</sd_cpp_extra_args>`
 *   inside the prompt (examples/server/routes_openai.cpp at 97d29908).
 */
export type ImagesDialect = 'openai' | 'localai' | 'sd-server';

export function buildImagesBody(
  task: ImageTask,
  serverModel: string,
  cliDefaults: CliDefaults | undefined,
  config: Pick<OpenAIEngineConfig, 'responseFormat'>,
  dialect: ImagesDialect = 'openai',
): ImagesGenerationBody {
  const body: ImagesGenerationBody = { model: serverModel, prompt: task.prompt, n: 1 };
  // The task's size, else the model's; with neither, the server picks its default.
  const width = task.width ?? cliDefaults?.width;
  const height = task.height ?? cliDefaults?.height;
  if (width !== undefined && height !== undefined) body.size = `${width}x${height}`;
  if (config.responseFormat !== 'none') body.response_format = config.responseFormat;
  const negative = task.negativePrompt !== undefined && task.negativePrompt !== '' ? task.negativePrompt : undefined;
  const steps = task.steps !== UNCHOSEN_STEPS ? task.steps : cliDefaults?.steps;
  if (dialect === 'localai') {
    if (task.prompt.includes('|')) {
      throw new EngineFailure('bad_input', 'LocalAI reads everything after a "|" in the prompt as the negative prompt; remove the "|" from the prompt', { retryable: false });
    }
    if (negative !== undefined) body.prompt = `${task.prompt}|${negative}`;
    if (task.seed !== undefined) body.seed = task.seed;
    if (steps !== undefined) body.step = steps;
  } else if (dialect === 'sd-server') {
    const extra: { seed?: number; negative_prompt?: string; sample_params?: { sample_steps: number } } = {};
    if (task.seed !== undefined) extra.seed = task.seed;
    if (negative !== undefined) extra.negative_prompt = negative;
    if (steps !== undefined) extra.sample_params = { sample_steps: steps };
    if (Object.keys(extra).length > 0) body.prompt = `${task.prompt}<sd_cpp_extra_args>${JSON.stringify(extra)}</sd_cpp_extra_args>`;
  } else if (cliDefaults?.['sendExtras'] === true) {
    if (negative !== undefined) body.negative_prompt = negative;
    if (task.seed !== undefined) body.seed = task.seed;
    if (steps !== undefined) {
      body.steps = steps;
      body.step = steps;
    }
  }
  return body;
}

/** What GET {base}/models and GET {origin}/version say about the server (see ImagesDialect). */
export function dialectFrom(models: unknown, version: unknown): ImagesDialect {
  const data = field(models, 'data');
  if (Array.isArray(data) && data.some((entry) => field(entry, 'id') === 'sd-cpp-local')) return 'sd-server';
  if (typeof field(version, 'version') === 'string') return 'localai';
  return 'openai';
}

/** What an error answer says: OpenAI's `{error: {message, param}}`, or the shapes other servers use. */
export function describeOpenAIError(json: unknown, text: string): { message: string; param?: string } {
  const error = field(json, 'error');
  const message = field(error, 'message') ?? (typeof error === 'string' ? error : undefined) ?? field(json, 'detail') ?? field(json, 'message');
  const param = field(error, 'param');
  const described = typeof message === 'string' && message !== '' ? excerpt(message) : text.trim() === '' ? 'no details given' : excerpt(text);
  return typeof param === 'string' && param !== '' ? { message: described, param } : { message: described };
}

/** Seconds to wait from Retry-After (seconds or an HTTP date) or OpenAI's retry-after-ms. */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.has('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.ceil(ms / 1000);
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}
