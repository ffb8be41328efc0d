import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { LoopbackHttp, readBody } from '../../helpers/loopback-http.ts';
import { Changes } from '../../helpers/wait.ts';

/**
 * Mimics AUTOMATIC1111 stable-diffusion-webui 1.9/1.10 (modules/api/api.py, modules/api/models.py,
 * modules/shared_state.py, modules/sd_samplers.py).
 * A stand-in for an AUTOMATIC1111 / Forge WebUI started with `--api`, speaking its /sdapi/v1 routes
 * with the real shapes (modules/api/api.py, models.py, shared_state.py):
 *
 * - txt2img / img2img run one at a time under a global queue lock, take `steps × stepMs`, update the
 *   State that /progress reports (job_count -1 while preparing, sampling_step 0-based, nextjob()
 *   after the iteration) and answer `{images: [base64 PNG], parameters, info}`;
 * - /interrupt sets `state.interrupted`: sampling stops and the request returns early with the
 *   partial image (or no image at all when interrupted before sampling), as the real one does;
 * - an unknown `sd_model_checkpoint` silently loads the first checkpoint (A1111 only logs it);
 * - an unknown `sampler_name` silently becomes the first sampler (1.9+, modules/sd_samplers.py
 *   get_sampler_and_scheduler; older versions answered 400 "Sampler not found");
 * - errors: FastAPI's 422 validation body, A1111's `{error, detail, body, errors}` exception body,
 *   401 for `--api-auth`, and `{detail: "Not Found"}` for every route when `--api` is off.
 *
 * Tests script the next generations (error answers, a stall, a dropped connection) and read what
 * it received.
 */

export interface FakeCheckpoint {
  title: string;
  model_name: string;
  hash: string;
  sha256: string;
  filename: string;
  config: string | null;
}

export type GenerationScript =
  /** Answer at once with this status and JSON body, without generating. */
  | { kind: 'answer'; status: number; body: unknown }
  /** Run `afterSteps` steps, then freeze (no progress, interrupt ignored) until the server closes. */
  | { kind: 'stall'; afterSteps: number }
  /** Run `afterSteps` steps, then drop the connection without an answer (a crashed WebUI). */
  | { kind: 'drop'; afterSteps: number };

export interface ReceivedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface FakeA1111Options {
  checkpoints?: FakeCheckpoint[];
  /** Checkpoints that appear only after POST /sdapi/v1/refresh-checkpoints. */
  laterCheckpoints?: FakeCheckpoint[];
  /** Title of the checkpoint loaded at start; default the first. */
  loaded?: string;
  stepMs?: number;
  /** Time to load another checkpoint. */
  loadMs?: number;
  /** `--api-auth user:password`. */
  auth?: { username: string; password: string };
  /** `--api` off: every /sdapi route is FastAPI's 404. */
  apiEnabled?: boolean;
  samplers?: string[];
  /**
   * opts.show_progress_every_n_steps (A1111's default 10): /progress's `current_image` (unless
   * `skip_current_image=true`) is a live preview PNG of the generation size, renewed every n steps.
   */
  previewEverySteps?: number;
}

export function fakeCheckpoint(name: string, hash: string): FakeCheckpoint {
  const sha256 = hash.padEnd(64, '0');
  return {
    title: `${name}.safetensors [${hash}]`,
    model_name: name,
    hash,
    sha256,
    filename: `/webui/models/Stable-diffusion/${name}.safetensors`,
    config: null,
  };
}

const DEFAULT_SAMPLERS = ['DPM++ 2M', 'DPM++ SDE', 'Euler a', 'Euler', 'LMS', 'Heun', 'DPM2', 'DPM2 a', 'DDIM', 'PLMS', 'UniPC', 'LCM'];

/** shared.state (modules/shared_state.py) as State.dict() reports it. */
interface WebUiState {
  skipped: boolean;
  interrupted: boolean;
  stopping_generation: boolean;
  job: string;
  job_count: number;
  job_timestamp: string;
  job_no: number;
  sampling_step: number;
  sampling_steps: number;
}

export class FakeA1111 {
  readonly received: ReceivedRequest[] = [];
  readonly changes = new Changes();
  readonly checkpoints: FakeCheckpoint[];
  readonly laterCheckpoints: FakeCheckpoint[];
  loaded: FakeCheckpoint | undefined;
  stepMs: number;
  loadMs: number;
  apiEnabled: boolean;
  auth: { username: string; password: string } | undefined;
  samplers: string[];
  previewEverySteps: number;
  /** shared.state.current_image as base64 PNG (set_current_image), and the step it was made at. */
  #currentImage: { base64: string; step: number } | undefined;
  /** The sampler each generation really used (after A1111's silent fallback). */
  readonly samplersUsed: string[] = [];
  interrupts = 0;
  /** Generation requests received and not yet answered, and the most there ever were at once. */
  generationsInFlight = 0;
  maxGenerationsInFlight = 0;
  /**
   * Where a generation pauses (once) until `release()`: before loading a checkpoint, or before
   * sampling step `step` (0-based). Lets a test watch a phase without racing the clock.
   */
  hold: { load?: boolean; step?: number } = {};
  /** Generations that finished (answered), in order, with whether they were interrupted. */
  readonly finished: Array<{ route: string; interrupted: boolean; checkpoint: string; images: number }> = [];

  readonly #scripts: GenerationScript[] = [];
  readonly #http: LoopbackHttp;
  readonly #closing = new AbortController();
  #queue: Promise<void> = Promise.resolve();
  #timeStart = 0;
  #resume: (() => void) | undefined;
  readonly state: WebUiState = {
    skipped: false,
    interrupted: false,
    stopping_generation: false,
    job: '',
    job_count: 0,
    job_timestamp: '0',
    job_no: 0,
    sampling_step: 0,
    sampling_steps: 0,
  };

  constructor(options: FakeA1111Options = {}) {
    this.checkpoints = [...(options.checkpoints ?? [fakeCheckpoint('sd15-base', 'a1b2c3d4e5'), fakeCheckpoint('sdxl-turbo', 'f6e5d4c3b2')])];
    this.laterCheckpoints = [...(options.laterCheckpoints ?? [])];
    this.loaded = this.checkpoints.find((c) => c.title === options.loaded) ?? this.checkpoints[0];
    this.stepMs = options.stepMs ?? 5;
    this.loadMs = options.loadMs ?? 0;
    this.apiEnabled = options.apiEnabled ?? true;
    this.auth = options.auth;
    this.previewEverySteps = options.previewEverySteps ?? 10;
    this.samplers = options.samplers ?? DEFAULT_SAMPLERS;
    this.#http = new LoopbackHttp((req, res) => void this.#handle(req, res));
  }

  static async start(options: FakeA1111Options = {}): Promise<FakeA1111> {
    const fake = new FakeA1111(options);
    await fake.#http.listen();
    return fake;
  }

  get url(): string {
    return this.#http.url;
  }

  /** What the next generation request does instead of a normal run (first in, first out). */
  script(...scripts: GenerationScript[]): void {
    this.#scripts.push(...scripts);
  }

  /** Let a generation paused by `hold` go on. */
  release(): void {
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.();
  }

  /** Whether a generation is paused at a hold right now. */
  get paused(): boolean {
    return this.#resume !== undefined;
  }

  async #pause(): Promise<void> {
    const closing = this.#closing.signal;
    await new Promise<void>((resolve) => {
      this.#resume = resolve;
      closing.addEventListener('abort', () => resolve(), { once: true });
      this.changes.signal();
    });
  }

  /** Requests to one path (without the query string). */
  requests(path: string): ReceivedRequest[] {
    return this.received.filter((r) => r.path === path);
  }

  /** Stop listening and cut every connection: afterwards connections are refused. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#http.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    let body: unknown;
    let badJson: string | undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch (error) {
        badJson = error instanceof Error ? error.message : String(error);
      }
    }
    this.received.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body });
    this.changes.signal();

    if (!url.pathname.startsWith('/sdapi/v1/') || !this.apiEnabled) return send(res, 404, { detail: 'Not Found' });
    const denied = this.#checkAuth(req);
    if (denied !== undefined) return send(res, 401, httpException(401, denied));
    if (badJson !== undefined) {
      return send(res, 422, { detail: [{ loc: ['body', 0], msg: `Expecting value: ${badJson}`, type: 'value_error.jsondecode' }] });
    }

    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /sdapi/v1/sd-models':
        return send(res, 200, this.checkpoints);
      case 'POST /sdapi/v1/refresh-checkpoints':
        this.checkpoints.push(...this.laterCheckpoints.splice(0));
        return send(res, 200, null);
      case 'GET /sdapi/v1/options':
        return send(res, 200, {
          sd_model_checkpoint: this.loaded?.title ?? null,
          sd_checkpoint_hash: this.loaded?.sha256 ?? null,
          samples_format: 'png',
          live_previews_enable: true,
          show_progress_every_n_steps: 10,
        });
      case 'GET /sdapi/v1/samplers':
        return send(res, 200, this.samplers.map((name) => ({ name, aliases: [], options: {} })));
      case 'GET /sdapi/v1/progress':
        return send(res, 200, this.#progress(url.searchParams.get('skip_current_image') === 'true'));
      case 'POST /sdapi/v1/interrupt':
        this.state.interrupted = true;
        this.interrupts++;
        this.changes.signal();
        return send(res, 200, {});
      case 'POST /sdapi/v1/txt2img':
      case 'POST /sdapi/v1/img2img':
        return this.#generation(url.pathname.endsWith('img2img') ? 'img2img' : 'txt2img', body, req, res);
      default:
        return send(res, 404, httpException(404, 'Not Found'));
    }
  }

  #checkAuth(req: IncomingMessage): string | undefined {
    if (this.auth === undefined) return undefined;
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Basic ')) return 'Not authenticated';
    const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
    if (user === this.auth.username && rest.join(':') === this.auth.password) return undefined;
    return 'Incorrect username or password';
  }

  /** modules/api/api.py progressapi, quirks included (a stale sampling_steps while job_count is -1). */
  #progress(skipCurrentImage: boolean) {
    const state = { ...this.state };
    if (this.state.job_count === 0) return { progress: 0, eta_relative: 0, state, current_image: null, textinfo: null };
    const currentImage = skipCurrentImage ? null : (this.#currentImage?.base64 ?? null);
    let progress = 0.01;
    if (this.state.job_count > 0) progress += this.state.job_no / this.state.job_count;
    if (this.state.sampling_steps > 0) progress += (1 / this.state.job_count) * (this.state.sampling_step / this.state.sampling_steps);
    const elapsed = (Date.now() - this.#timeStart) / 1000;
    const eta = elapsed / progress;
    return { progress: Math.min(progress, 1), eta_relative: eta - elapsed, state, current_image: currentImage, textinfo: null };
  }

  #samplerFor(request: Record<string, unknown>): string {
    const asked = (request.sampler_name ?? request.sampler_index ?? this.samplers[0]) as string;
    return this.samplers.find((name) => asked === name || asked.startsWith(`${name} `)) ?? (this.samplers[0] as string);
  }

  async #generation(route: 'txt2img' | 'img2img', body: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.generationsInFlight++;
    this.maxGenerationsInFlight = Math.max(this.maxGenerationsInFlight, this.generationsInFlight);
    this.changes.signal();
    try {
      const problems = validate(route, body);
      if (problems.length > 0) return send(res, 422, { detail: problems });
      const request = body as Record<string, unknown>;
      // A1111 1.9+ (modules/sd_samplers.py get_sampler_and_scheduler): an unknown sampler name is
      // silently replaced by the first sampler; only the console says so.
      this.samplersUsed.push(this.#samplerFor(request));
      const script = this.#scripts.shift();
      if (script?.kind === 'answer') return send(res, script.status, script.body);
      if (route === 'img2img') {
        const images = request.init_images as string[] | null | undefined;
        if (images === null || images === undefined) return send(res, 404, httpException(404, 'Init image not found'));
        for (const image of [...images, ...(typeof request.mask === 'string' ? [request.mask] : [])]) {
          if (!(await decodable(image))) return send(res, 500, httpException(500, 'Invalid encoded image'));
        }
      }
      // The global queue lock: one generation at a time, the others wait their turn.
      const turn = this.#queue;
      let done!: () => void;
      this.#queue = new Promise<void>((resolve) => (done = resolve));
      await turn;
      try {
        await this.#run(route, request, script, req, res);
      } finally {
        done();
      }
    } catch (error) {
      if (this.#closing.signal.aborted) return;
      send(res, 500, { error: 'Exception', detail: '', body: '', errors: String(error) });
    } finally {
      this.generationsInFlight--;
      this.changes.signal();
    }
  }

  async #run(route: 'txt2img' | 'img2img', request: Record<string, unknown>, script: GenerationScript | undefined, req: IncomingMessage, res: ServerResponse) {
    const closing = this.#closing.signal;
    this.#begin(`scripts_${route}`);
    // process_images: override_settings first (a checkpoint switch loads weights), then the loop.
    const wanted = (request.override_settings as Record<string, unknown> | undefined)?.sd_model_checkpoint;
    if (typeof wanted === 'string') {
      const found = this.checkpoints.find((c) => checkpointIds(c).includes(wanted));
      const next = found ?? this.checkpoints[0]; // "Checkpoint … not found; loading fallback …"
      if (next !== this.loaded) {
        if (this.hold.load === true) {
          this.hold.load = undefined; // a hold pauses once
          await this.#pause();
        }
        await sleep(this.loadMs, undefined, { signal: closing });
        this.loaded = next;
      }
    }
    const steps = Number(request.steps ?? 20);
    const denoise = Number(request.denoising_strength ?? 0.75);
    const samplingSteps = route === 'img2img' ? Math.floor(Math.min(denoise, 0.999) * steps) + 1 : steps;
    let sampled = false;
    if (!this.state.interrupted) {
      this.state.job_count = 1;
      this.state.sampling_steps = samplingSteps;
      this.state.sampling_step = 0;
      this.changes.signal();
      for (let i = 0; i < samplingSteps; i++) {
        if ((script?.kind === 'stall' || script?.kind === 'drop') && i === script.afterSteps) {
          if (script.kind === 'drop') {
            this.#end();
            req.socket.destroy();
            return;
          }
          await new Promise<void>((resolve) => closing.addEventListener('abort', () => resolve(), { once: true }));
          return;
        }
        if (this.hold.step === i) {
          this.hold.step = undefined;
          await this.#pause();
        }
        await sleep(this.stepMs, undefined, { signal: closing });
        if (this.state.interrupted) break; // the CFG denoiser raises InterruptedException; the last latent is kept
        this.state.sampling_step = i;
        sampled = true;
        // set_current_image: a new live preview every show_progress_every_n_steps steps.
        if ((i + 1) % this.previewEverySteps === 0) {
          const level = Math.round((255 * (i + 1)) / samplingSteps);
          this.#currentImage = { base64: await renderPng(Number(request.width ?? 512), Number(request.height ?? 512), [level, 96, 255 - level]), step: i };
        }
        this.changes.signal();
      }
      this.state.job_no += 1; // state.nextjob()
      this.state.sampling_step = 0;
    }
    this.#currentImage = undefined;
    const interrupted = this.state.interrupted;
    const width = Number(request.width ?? 512);
    const height = Number(request.height ?? 512);
    const images = sampled ? [await renderPng(width, height, interrupted ? [128, 128, 128] : colourFor(String(request.prompt ?? '')))] : [];
    const checkpoint = this.loaded?.title ?? '';
    this.#end();
    this.finished.push({ route, interrupted, checkpoint, images: images.length });
    const info = {
      prompt: request.prompt,
      negative_prompt: request.negative_prompt ?? '',
      seed: request.seed === -1 || request.seed === undefined ? 1234567 : request.seed,
      width,
      height,
      sampler_name: this.#samplerFor(request),
      cfg_scale: request.cfg_scale ?? 7,
      steps,
      sd_model_name: this.loaded?.model_name,
      sd_model_hash: this.loaded?.hash,
      job_timestamp: this.state.job_timestamp,
    };
    const parameters = { ...request, init_images: null, mask: null };
    send(res, 200, { images, parameters, info: JSON.stringify(info) });
    this.changes.signal();
  }

  #begin(job: string): void {
    Object.assign(this.state, {
      sampling_step: 0,
      job_count: -1,
      job_no: 0,
      job_timestamp: new Date().toISOString().replace(/\D/g, '').slice(0, 17),
      skipped: false,
      interrupted: false,
      stopping_generation: false,
      job,
    });
    this.#timeStart = Date.now();
    this.changes.signal();
  }

  #end(): void {
    this.state.job = '';
    this.state.job_count = 0;
    this.changes.signal();
  }
}

/** CheckpointInfo.ids: every name sd_model_checkpoint may use for a checkpoint. */
function checkpointIds(c: FakeCheckpoint): string[] {
  const name = `${c.model_name}.safetensors`;
  return [c.title, name, c.model_name, c.hash, c.sha256, `${name} [${c.hash}]`, `${c.model_name} [${c.hash}]`];
}

/** A1111's exception handler body (api_middleware.handle_exception). */
function httpException(status: number, detail: string) {
  return { error: 'HTTPException', detail, body: '', errors: `${status}: ${detail}` };
}

const INT_FIELDS = ['steps', 'width', 'height', 'seed', 'batch_size', 'n_iter'];
const FLOAT_FIELDS = ['cfg_scale', 'denoising_strength'];
const STRING_FIELDS = ['prompt', 'negative_prompt', 'sampler_name', 'scheduler', 'mask'];

/** pydantic v1's errors for the fields the engine sends (FastAPI answers them as 422). */
function validate(route: string, body: unknown): Array<{ loc: Array<string | number>; msg: string; type: string }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return [{ loc: ['body'], msg: 'value is not a valid dict', type: 'type_error.dict' }];
  }
  const request = body as Record<string, unknown>;
  const problems: Array<{ loc: Array<string | number>; msg: string; type: string }> = [];
  for (const key of INT_FIELDS) {
    if (key in request && request[key] !== null && !Number.isInteger(request[key])) problems.push({ loc: ['body', key], msg: 'value is not a valid integer', type: 'type_error.integer' });
  }
  for (const key of FLOAT_FIELDS) {
    if (key in request && request[key] !== null && typeof request[key] !== 'number') problems.push({ loc: ['body', key], msg: 'value is not a valid float', type: 'type_error.float' });
  }
  for (const key of STRING_FIELDS) {
    if (key in request && request[key] !== null && typeof request[key] !== 'string') problems.push({ loc: ['body', key], msg: 'str type expected', type: 'type_error.str' });
  }
  if ('override_settings' in request && (typeof request.override_settings !== 'object' || Array.isArray(request.override_settings))) {
    problems.push({ loc: ['body', 'override_settings'], msg: 'value is not a valid dict', type: 'type_error.dict' });
  }
  if (route === 'img2img' && 'init_images' in request && request.init_images !== null && !Array.isArray(request.init_images)) {
    problems.push({ loc: ['body', 'init_images'], msg: 'value is not a valid list', type: 'type_error.list' });
  }
  return problems;
}

/** decode_base64_to_image: a data: URL or bare base64 that PIL can open. */
async function decodable(image: unknown): Promise<boolean> {
  if (typeof image !== 'string') return false;
  const data = image.startsWith('data:image/') ? (image.split(';')[1]?.split(',')[1] ?? '') : image;
  try {
    await sharp(Buffer.from(data, 'base64')).metadata();
    return true;
  } catch {
    return false;
  }
}

function colourFor(prompt: string): [number, number, number] {
  let hash = 0;
  for (const char of prompt) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return [hash & 0xff, (hash >> 8) & 0xff, (hash >> 16) & 0xff];
}

async function renderPng(width: number, height: number, [r, g, b]: [number, number, number]): Promise<string> {
  const png = await sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toBuffer();
  return png.toString('base64');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
