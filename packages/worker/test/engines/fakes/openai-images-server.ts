import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { LoopbackHttp, readBody } from '../../helpers/loopback-http.ts';
import { Changes } from '../../helpers/wait.ts';

/**
 * Mimics OpenAI's images API reference (POST /v1/images/generations) and, with `localai`, LocalAI
 * (mudler/LocalAI at 82c191af: core/http/endpoints/openai/image.go, core/http/routes/localai.go).
 * A stand-in for an OpenAI-compatible images server (OpenAI's API reference, LocalAI):
 *
 * - `GET /v1/models` → `{object: "list", data: [{id, object: "model", created, owned_by}]}`;
 * - `POST /v1/images/generations` → `{created, data: [{b64_json}]}` or, for
 *   `response_format: "url"`, `{created, data: [{url}]}` with the PNG served by this server under
 *   /generated/ (LocalAI serves its results the same way);
 * - the bearer key is checked on every route, with OpenAI's 401 bodies (which quote a masked key);
 * - strict mode (OpenAI's own behaviour) answers 400 `Unknown parameter: 'x'.` to fields outside
 *   its images API; `rejects` refuses known ones too (gpt-image models refuse `response_format`);
 * - errors are `{error: {message, type, param, code}}`;
 * - `localai`: GET /version answers `{version}`, and a generation reads what LocalAI reads: the
 *   negative prompt from `prompt` split at "|" (a `negative_prompt` field is ignored), `step`
 *   (default 15) and `seed`; `applied` records it.
 *
 * Tests script the next generations (slow, an error status with headers, a custom answer, a hang)
 * and read what was received.
 */

export type ImagesScript =
  /** Wait this long before answering normally (ends early if the client goes away). */
  | { kind: 'slow'; ms: number }
  /** Answer with this status, JSON body and headers instead of generating. */
  | { kind: 'answer'; status: number; body: unknown; headers?: Record<string, string> }
  /** Never answer (until the server closes). */
  | { kind: 'hang' };

export interface ReceivedImagesRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface FakeImagesOptions {
  /** Required bearer key; none = open server (LocalAI without API keys). */
  apiKey?: string;
  models?: string[];
  /** Serve GET /v1/models (some image servers have none: 404). */
  modelsRoute?: boolean;
  /** Reject parameters OpenAI's images API does not have (OpenAI does; LocalAI does not). */
  strict?: boolean;
  /** Parameters refused even though the API knows them. */
  rejects?: string[];
  /** Sizes accepted; any "<w>x<h>" when absent. */
  sizes?: string[];
  /** The format when the request names none. */
  defaultFormat?: 'b64_json' | 'url';
  /** Behave as LocalAI of this version (lenient, GET /version, prompt "positive|negative"). */
  localai?: { version: string };
}

/** What LocalAI's image endpoint used from one request. */
export interface LocalAiApplied {
  positive: string;
  negative: string;
  step: number;
  seed: number | undefined;
}

/** Parameters of OpenAI's POST /v1/images/generations. */
const KNOWN_PARAMS = new Set([
  'prompt', 'model', 'n', 'quality', 'response_format', 'size', 'style', 'user',
  'background', 'moderation', 'output_compression', 'output_format', 'partial_images', 'stream',
]);

export class FakeImagesServer {
  readonly received: ReceivedImagesRequest[] = [];
  readonly changes = new Changes();
  options: FakeImagesOptions;
  /** Generation requests whose client went away before the answer. */
  disconnected = 0;
  /** With `localai`: what each generation used. */
  readonly applied: LocalAiApplied[] = [];
  readonly #scripts: ImagesScript[] = [];
  readonly #files = new Map<string, Buffer>();
  readonly #http: LoopbackHttp;
  readonly #closing = new AbortController();

  constructor(options: FakeImagesOptions) {
    this.options = options;
    this.#http = new LoopbackHttp((req, res) => void this.#handle(req, res));
  }

  static async start(options: FakeImagesOptions = {}): Promise<FakeImagesServer> {
    const fake = new FakeImagesServer(options);
    await fake.#http.listen();
    return fake;
  }

  /** The API root, as `base_url` takes it. */
  get baseUrl(): string {
    return `${this.#http.url}/v1`;
  }

  get origin(): string {
    return this.#http.url;
  }

  script(...scripts: ImagesScript[]): void {
    this.#scripts.push(...scripts);
  }

  requests(path: string): ReceivedImagesRequest[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.#http.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    this.received.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    this.changes.signal();

    const denied = this.#checkKey(req.headers.authorization);
    if (denied !== undefined) return send(res, 401, denied);
    const route = `${req.method} ${path}`;
    if (route === 'GET /v1/models' && this.options.modelsRoute !== false) {
      const created = 1_700_000_000;
      return send(res, 200, { object: 'list', data: (this.options.models ?? ['stablediffusion', 'dall-e-3']).map((id) => ({ id, object: 'model', created, owned_by: 'system' })) });
    }
    if (route === 'GET /version' && this.options.localai !== undefined) return send(res, 200, { version: this.options.localai.version });
    if (route === 'POST /v1/images/generations') return this.#generate(body, req, res);
    if (req.method === 'GET' && path.startsWith('/generated/')) {
      const file = this.#files.get(path);
      if (file === undefined) return send(res, 404, openAiError('Not found', 'invalid_request_error', null, null));
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': file.length }).end(file);
      return;
    }
    send(res, 404, openAiError(`Invalid URL (${req.method} ${path})`, 'invalid_request_error', null, null));
  }

  /** OpenAI's answers for a missing or wrong bearer key; the wrong key is quoted masked, as OpenAI does. */
  #checkKey(header: string | undefined): unknown {
    const key = this.options.apiKey;
    if (key === undefined) return undefined;
    if (header === undefined || !header.startsWith('Bearer ')) {
      return openAiError(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
        null,
        null,
      );
    }
    const given = header.slice('Bearer '.length);
    if (given === key) return undefined;
    const masked = `${given.slice(0, 3)}${'*'.repeat(Math.max(0, given.length - 7))}${given.slice(-4)}`;
    return openAiError(`Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', null, 'invalid_api_key');
  }

  async #generate(body: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const script = this.#scripts.shift();
    if (script?.kind === 'answer') return send(res, script.status, script.body, script.headers);
    if (script?.kind === 'hang') return;
    const problem = this.#validate(body);
    if (problem !== undefined) return send(res, 400, problem);
    if (script?.kind === 'slow') {
      let timer: NodeJS.Timeout | undefined;
      const gone = new Promise<boolean>((resolve) => res.on('close', () => resolve(!res.writableFinished)));
      const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), script.ms)));
      const clientLeft = await Promise.race([gone, waited]);
      clearTimeout(timer);
      if (clientLeft) {
        this.disconnected++;
        this.changes.signal();
        return;
      }
    }
    const request = body as Record<string, unknown>;
    if (this.options.localai !== undefined) {
      const [positive = '', negative = ''] = String(request.prompt).split('|');
      const step = typeof request.step === 'number' && request.step !== 0 ? request.step : 15;
      this.applied.push({ positive, negative, step, seed: typeof request.seed === 'number' ? request.seed : undefined });
    }
    const [width, height] = sizeOf(String(request.size ?? '1024x1024'));
    const png = await sharp({ create: { width, height, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toBuffer();
    const format = (request.response_format as string | undefined) ?? this.options.defaultFormat ?? 'url';
    const created = Math.floor(Date.now() / 1000);
    if (format === 'url') {
      const path = `/generated/${randomUUID()}.png`;
      this.#files.set(path, png);
      return send(res, 200, { created, data: [{ url: `${this.#http.url}${path}` }] });
    }
    send(res, 200, { created, data: [{ b64_json: png.toString('base64') }] });
  }

  #validate(body: unknown): unknown {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return openAiError('We could not parse the JSON body of your request.', 'invalid_request_error', null, null);
    }
    const request = body as Record<string, unknown>;
    for (const key of Object.keys(request)) {
      const unknown = this.options.strict !== false && this.options.localai === undefined && !KNOWN_PARAMS.has(key);
      if (unknown || this.options.rejects?.includes(key)) return openAiError(`Unknown parameter: '${key}'.`, 'invalid_request_error', key, 'unknown_parameter');
    }
    if (typeof request.prompt !== 'string' || request.prompt === '') {
      return openAiError("Missing required parameter: 'prompt'.", 'invalid_request_error', 'prompt', 'missing_required_parameter');
    }
    if (request.n !== undefined && request.n !== 1) return openAiError(`Invalid 'n': this fake makes one image.`, 'invalid_request_error', 'n', 'invalid_value');
    const size = String(request.size ?? '1024x1024');
    const sizes = this.options.sizes;
    if ((sizes !== undefined && !sizes.includes(size)) || sizeOf(size)[0] === 0) {
      const supported = sizes === undefined ? 'WIDTHxHEIGHT' : sizes.map((s) => `'${s}'`).join(', ');
      return openAiError(`Invalid value: '${size}'. Supported values are: ${supported}.`, 'invalid_request_error', 'size', 'invalid_value');
    }
    if (request.response_format !== undefined && request.response_format !== 'url' && request.response_format !== 'b64_json') {
      return openAiError(`Invalid value: '${String(request.response_format)}'. Supported values are: 'url' and 'b64_json'.`, 'invalid_request_error', 'response_format', 'invalid_value');
    }
    return undefined;
  }
}

export function openAiError(message: string, type: string, param: string | null, code: string | null) {
  return { error: { message, type, param, code } };
}

function sizeOf(size: string): [number, number] {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
