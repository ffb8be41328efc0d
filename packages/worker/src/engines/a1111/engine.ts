import { isLoopbackHost, type ImageTask, type TaskKind } from '@studio-worker/protocol';
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
import { hasCheckpoint, checkpointTitles } from './checkpoints.ts';
import { A1111_ROUTES, A1111Client, describeA1111Error, isRouteMissing, readProgress, type A1111Progress } from './client.ts';
import { A1111EngineConfig, type A1111EngineConfigInput } from './config.ts';
import { excerpt, field, settlesWithin, type HttpReply } from '../shared/http-json.ts';
import { encodeImageAs, fromBase64, toBase64 } from './image-io.ts';
import { fetchImage, sniffImageFormat } from '../shared/input-images.ts';
import { A1111_SCHEDULERS, checkSampler, samplerNames } from '../shared/samplers.ts';
import { buildA1111Body, resolveCheckpoint, type A1111GenerationBody, type A1111Inputs } from './payload.ts';
import { ProgressWatch } from './progress-watch.ts';
import { serverLock, type ServerLock } from './server-lock.ts';

export interface A1111EngineDeps {
  log: Logger;
  /** Unused: the WebUI holds its own checkpoints. Accepted so every engine factory takes the same deps. */
  modelsRoot?: string;
}

/** Cancel budget (1 s in all): the interrupt call, then the WebUI's early answer to the request. */
const INTERRUPT_TIMEOUT_MS = 400;
const INTERRUPT_SETTLE_MS = 400;
const CHECKPOINT_LIST_TIMEOUT_MS = 10_000;
/** Input images may come from a slow studio; A1111 itself waits longer than this anyway. */
const INPUT_TIMEOUT_MS = 120_000;
/** How often /progress also fetches current_image (the live preview): the wire takes one a second. */
const PREVIEW_POLL_MS = 1_000;

type Route = 'txt2img' | 'img2img';
type StopReason = 'cancelled' | 'stalled' | 'deadline';

/**
 * AUTOMATIC1111 / Forge WebUI over its `/sdapi/v1` API (started with `--api`). One request at a time
 * per server (the WebUI has one global queue lock and one global progress state); progress comes
 * from polling /sdapi/v1/progress, cancel is POST /sdapi/v1/interrupt, and a watchdog interrupts a
 * job whose progress stops moving.
 */
export class A1111Engine implements Engine {
  readonly name = 'a1111';
  readonly kinds: readonly TaskKind[] = ['image'];
  readonly #config: A1111EngineConfig;
  readonly #client: A1111Client;
  readonly #lock: ServerLock;
  readonly #log: Logger;

  constructor(config: A1111EngineConfig, deps: A1111EngineDeps) {
    this.#config = config;
    this.#client = new A1111Client(config);
    this.#lock = serverLock(config.url);
    this.#log = deps.log;
    const url = new URL(config.url);
    if (config.password !== undefined && url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      this.#log.warn({ op: 'a1111_config', url: config.url }, 'the A1111 password travels in clear over plain http to a non-loopback host; prefer https or an SSH tunnel');
    }
  }

  async probe(): Promise<EngineAvailability> {
    const url = this.#config.url;
    const reply = await this.#client.get(A1111_ROUTES.options, { timeoutMs: this.#config.probeTimeoutSecs * 1000 });
    switch (reply.kind) {
      case 'unreachable':
        return { available: false, reason: `cannot reach A1111 at ${url} (${reply.message}): start the WebUI with --api, or set [engines.a1111] url` };
      case 'timeout':
        return { available: false, reason: `A1111 at ${url} did not answer /sdapi/v1/options within ${reply.afterMs} ms` };
      case 'aborted':
        return { available: false, reason: 'probe aborted' };
    }
    if (reply.status === 401 || reply.status === 403) {
      return { available: false, reason: `A1111 at ${url} refused the credentials (${reply.status}): ${credentialsHint(this.#config.username)}` };
    }
    if (isRouteMissing(reply)) return { available: false, reason: `A1111 at ${url} has no /sdapi/v1 API (404): start the WebUI with --api` };
    if (reply.status !== 200) {
      return { available: false, reason: `A1111 at ${url} answered ${reply.status} to /sdapi/v1/options: ${describeA1111Error(reply.json, reply.text)}` };
    }
    const checkpoint = field(reply.json, 'sd_model_checkpoint');
    const loaded = typeof checkpoint === 'string' && checkpoint !== '' ? `checkpoint ${checkpoint}` : 'no checkpoint loaded';
    return { available: true, detail: `A1111 at ${url}, ${loaded}` };
  }

  advertisedModels(): Partial<Record<TaskKind, readonly string[]>> {
    return {};
  }

  async run(job: EngineJob, ctx: EngineContext): Promise<EngineResult> {
    const task = job.task;
    if (task.kind !== 'image') {
      throw new EngineFailure('bad_input', `the a1111 engine cannot serve ${task.kind} tasks (it serves image)`, { retryable: false });
    }
    if (task.maskUrl !== undefined && task.initImageUrl === undefined) {
      throw new EngineFailure('bad_input', 'a mask (maskUrl) needs an init image (initImageUrl) to paint into', { retryable: false });
    }
    const inputs = await this.#fetchInputs(task, ctx);
    const body = buildA1111Body(task, job.model, job.source.cliDefaults, inputs);
    const route: Route = body.init_images === undefined ? 'txt2img' : 'img2img';
    await this.#checkCheckpoint(resolveCheckpoint(job.model, job.source.cliDefaults), ctx);
    if (body.sampler_name !== undefined) {
      const reply = await this.#client.get('/sdapi/v1/samplers', { signal: ctx.signal, timeoutMs: CHECKPOINT_LIST_TIMEOUT_MS });
      checkSampler(`A1111 at ${this.#config.url}`, body.sampler_name, reply.kind === 'response' && reply.status === 200 ? samplerNames(reply.json) : undefined, A1111_SCHEDULERS);
    }

    if (this.#lock.held) ctx.progress({ phase: 'queued', message: `waiting for another job on A1111 at ${this.#config.url}` });
    const release = await this.#lock.acquire(ctx.signal);
    let image: string;
    try {
      image = await this.#generate(route, body, ctx);
    } finally {
      release();
    }

    ctx.progress({ phase: 'encoding' });
    const result = await encodeImageAs(fromBase64(image), task.ext, `A1111 at ${this.#config.url}`);
    if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
    return { type: 'file', bytes: result.bytes, ext: result.ext };
  }

  async #fetchInputs(task: ImageTask, ctx: EngineContext): Promise<A1111Inputs> {
    if (task.initImageUrl === undefined) return {};
    ctx.progress({ phase: 'loading', message: 'fetching the input images' });
    const fetchOne = async (url: string, what: string) =>
      (await fetchImage(url, { what, signal: ctx.signal, policy: ctx.inputUrls, base64DataOnly: true, timeoutMs: INPUT_TIMEOUT_MS })).bytes;
    const [initImage, mask] = await Promise.all([
      fetchOne(task.initImageUrl, 'init image'),
      task.maskUrl === undefined ? undefined : fetchOne(task.maskUrl, 'mask'),
    ]);
    const inputs: A1111Inputs = { initImage: toBase64(initImage) };
    if (mask !== undefined) inputs.mask = toBase64(mask);
    return inputs;
  }

  /**
   * A1111 answers an unknown `sd_model_checkpoint` by quietly loading its first checkpoint, which
   * would deliver an image from the wrong model; so the name is checked against /sd-models first
   * (after one refresh-checkpoints, for a file dropped in since the WebUI started).
   */
  async #checkCheckpoint(checkpoint: string, ctx: EngineContext): Promise<void> {
    const list = async () => {
      const reply = await this.#client.get('/sdapi/v1/sd-models', { signal: ctx.signal, timeoutMs: CHECKPOINT_LIST_TIMEOUT_MS });
      return reply.kind === 'response' && reply.status === 200 ? reply.json : undefined;
    };
    let models = await list();
    if (models === undefined || hasCheckpoint(models, checkpoint)) return; // unknown answer: let the generation request speak
    await this.#client.post('/sdapi/v1/refresh-checkpoints', undefined, { signal: ctx.signal, timeoutMs: CHECKPOINT_LIST_TIMEOUT_MS });
    models = (await list()) ?? models;
    if (hasCheckpoint(models, checkpoint)) return;
    if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
    const titles = checkpointTitles(models) ?? [];
    const known = titles.length === 0 ? 'it has none' : `it has: ${excerpt(titles.join(', '), 200)}`;
    // Retryable: this worker's WebUI lacks the file, another worker's may have it.
    throw new EngineFailure(
      'engine_unavailable',
      `A1111 at ${this.#config.url} has no checkpoint "${checkpoint}" (sd_model_checkpoint; ${known}): set the model's cliDefaults.checkpoint to one of them, or add the file to the WebUI's models/Stable-diffusion folder`,
      { retryable: true },
    );
  }

  /** One generation under the server lock: the request, progress polling, cancel, watchdog and deadline. */
  async #generate(route: Route, body: A1111GenerationBody, ctx: EngineContext): Promise<string> {
    const log = ctx.log;
    const request = new AbortController();
    const started = Date.now();
    log.debug({ op: 'a1111_request', route, url: this.#config.url, steps: body.steps, width: body.width, height: body.height }, 'generation request sent');
    const replied = this.#client.post(A1111_ROUTES[route], body, { signal: request.signal });

    let stopReason: StopReason | undefined;
    let wake!: () => void;
    const stopped = new Promise<void>((resolve) => (wake = resolve));
    const stop = (reason: StopReason) => {
      stopReason ??= reason;
      wake();
    };
    const onAbort = () => stop('cancelled');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal.aborted) stop('cancelled');
    const deadline = setTimeout(() => stop('deadline'), this.#config.timeoutSecs * 1000);
    let lastImagePoll = -Infinity;
    const watch = new ProgressWatch({
      // current_image (a full-size PNG) is asked for at most once a second: the preview pace.
      poll: (signal) => {
        const withImage = performance.now() - lastImagePoll >= PREVIEW_POLL_MS;
        if (withImage) lastImagePoll = performance.now();
        return this.#pollProgress(signal, withImage);
      },
      intervalMs: this.#config.progressPollMs,
      stallMs: this.#config.stepTimeoutSecs * 1000,
      onProgress: (update) => ctx.progress(update),
      onPreview: (base64, last) => {
        const bytes = fromBase64(base64);
        const format = sniffImageFormat(bytes);
        if (format === 'png' || format === 'jpeg' || format === 'webp') ctx.progress({ ...(last ?? { phase: 'generating' }), preview: { mime: `image/${format}`, bytes } });
      },
      onStall: () => stop('stalled'),
    });
    watch.start();
    try {
      const reply = await Promise.race([replied, stopped.then(() => undefined)]);
      if (reply === undefined) {
        // /interrupt is global: only send it while our request is still running.
        await this.#interrupt(replied, request, stopReason ?? 'cancelled', log);
        throw this.#stopFailure(stopReason ?? 'cancelled', ctx);
      }
      if (ctx.signal.aborted) throw toEngineFailure(ctx.signal.reason, ctx.signal);
      const image = this.#imageFrom(reply, route, body);
      log.info({ op: 'a1111_request', route, elapsedMs: Date.now() - started }, 'generation finished');
      return image;
    } finally {
      watch.stop();
      clearTimeout(deadline);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  async #pollProgress(signal: AbortSignal, withImage = false): Promise<A1111Progress | undefined> {
    const reply = await this.#client.get(withImage ? A1111_ROUTES.progressWithImage : A1111_ROUTES.progress, { signal });
    return reply.kind === 'response' && reply.status === 200 ? readProgress(reply.json) : undefined;
  }

  /**
   * Interrupt the WebUI (it then returns what it has early), give the request a moment to settle so
   * the server is really free before the lock passes on, then drop it either way.
   */
  async #interrupt(replied: Promise<HttpReply>, request: AbortController, reason: StopReason, log: Logger): Promise<void> {
    const answer = await this.#client.post(A1111_ROUTES.interrupt, undefined, { timeoutMs: INTERRUPT_TIMEOUT_MS });
    if (answer.kind === 'response' && answer.status === 200) log.info({ op: 'a1111_interrupt', reason }, 'generation interrupted');
    else log.warn({ op: 'a1111_interrupt', reason, answer: answer.kind === 'response' ? answer.status : answer.kind }, 'the interrupt call failed; dropping the request anyway');
    await settlesWithin(replied, INTERRUPT_SETTLE_MS);
    request.abort();
  }

  #stopFailure(reason: StopReason, ctx: EngineContext): EngineFailure {
    const url = this.#config.url;
    switch (reason) {
      case 'cancelled':
        return toEngineFailure(ctx.signal.reason, ctx.signal);
      case 'stalled':
        return new EngineFailure(
          'engine_error',
          `A1111 at ${url} made no progress for ${this.#config.stepTimeoutSecs} s (step_timeout_secs), so the job was interrupted; the WebUI may be stuck loading a model or out of memory`,
          { retryable: true },
        );
      case 'deadline':
        return new EngineFailure('timeout', `A1111 at ${url} did not finish within ${this.#config.timeoutSecs} s (timeout_secs), so the job was interrupted`, {
          retryable: true,
        });
    }
  }

  /** The base64 image of a finished request, or the failure its answer means. */
  #imageFrom(reply: HttpReply, route: Route, body: A1111GenerationBody): string {
    const url = this.#config.url;
    switch (reply.kind) {
      case 'unreachable':
        throw new EngineFailure('engine_error', `cannot reach A1111 at ${url} (${reply.message}): is the WebUI running with --api?`, { retryable: true });
      case 'timeout':
      case 'aborted':
        throw new EngineFailure('engine_error', `the ${route} request to A1111 at ${url} was cut off`, { retryable: true });
    }
    const { status } = reply;
    if (status === 200) {
      const images = field(reply.json, 'images');
      const first = Array.isArray(images) ? images[0] : undefined;
      if (typeof first === 'string' && first !== '') return first;
      throw new EngineFailure('engine_error', `A1111 at ${url} answered ${route} without an image (was the job interrupted from the WebUI?)`, { retryable: true });
    }
    if (status === 401 || status === 403) {
      throw new EngineFailure('engine_unavailable', `A1111 at ${url} refused the credentials (${status}): ${credentialsHint(this.#config.username)}`, {
        retryable: false,
      });
    }
    if (isRouteMissing(reply)) {
      throw new EngineFailure('engine_unavailable', `A1111 at ${url} has no /sdapi/v1/${route} (404): start the WebUI with --api`, { retryable: false });
    }
    const what = describeA1111Error(reply.json, reply.text);
    if (status >= 400 && status < 500) {
      throw new EngineFailure('bad_input', `A1111 rejected the ${route} request (${status}): ${what}${fieldHint(what, body)}`, { retryable: false });
    }
    throw new EngineFailure('engine_error', `A1111 failed the ${route} request (${status}): ${what}`, { retryable: true });
  }
}

/** Name the request field an error is about when A1111's message does not. */
function fieldHint(message: string, body: A1111GenerationBody): string {
  if (/sampler/i.test(message) && body.sampler_name !== undefined) return ` (sampler_name "${body.sampler_name}")`;
  if (/scheduler/i.test(message) && body.scheduler !== undefined) return ` (scheduler "${body.scheduler}")`;
  if (/model|checkpoint/i.test(message)) return ` (sd_model_checkpoint "${body.override_settings.sd_model_checkpoint}")`;
  return '';
}

function credentialsHint(username: string | undefined): string {
  return username === undefined
    ? 'the WebUI runs with --api-auth; set [engines.a1111] username and password to one of its user:password pairs'
    : `check [engines.a1111] username ("${username}") and password against the WebUI's --api-auth`;
}

/** The factory the worker's engine roster calls with the `[engines.a1111]` table (camelCase keys). */
export function createA1111Engine(config: A1111EngineConfigInput, deps: A1111EngineDeps): Engine {
  return new A1111Engine(A1111EngineConfig.parse(config), deps);
}
