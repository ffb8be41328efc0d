import { excerpt, field, requestJson, type HttpReply } from '../shared/http-json.ts';

/** The routes of A1111's API (modules/api/api.py) this engine uses. */
export const A1111_ROUTES = {
  options: '/sdapi/v1/options',
  progress: '/sdapi/v1/progress?skip_current_image=true',
  /** The same with `current_image`, A1111's live preview (base64, renewed every show_progress_every_n_steps). */
  progressWithImage: '/sdapi/v1/progress?skip_current_image=false',
  txt2img: '/sdapi/v1/txt2img',
  img2img: '/sdapi/v1/img2img',
  interrupt: '/sdapi/v1/interrupt',
} as const;

export interface A1111ClientOptions {
  url: string;
  username?: string;
  password?: string;
}

/** A1111's API at one address, with `--api-auth` basic credentials when configured. */
export class A1111Client {
  readonly url: string;
  readonly #headers: Record<string, string>;

  constructor(options: A1111ClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.#headers = {};
    if (options.username !== undefined || options.password !== undefined) {
      const credentials = Buffer.from(`${options.username ?? ''}:${options.password ?? ''}`).toString('base64');
      this.#headers.authorization = `Basic ${credentials}`;
    }
  }

  get(path: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<HttpReply> {
    return requestJson(`${this.url}${path}`, { method: 'GET', headers: this.#headers, ...options });
  }

  post(path: string, body: unknown, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<HttpReply> {
    return requestJson(`${this.url}${path}`, { method: 'POST', headers: this.#headers, body, ...options });
  }
}

/** The part of GET /sdapi/v1/progress the engine reads (ProgressResponse + State.dict()). */
export interface A1111Progress {
  progress: number;
  etaRelative: number;
  jobCount: number;
  jobNo: number;
  job: string;
  jobTimestamp: string;
  samplingStep: number;
  samplingSteps: number;
  interrupted: boolean;
  /** `current_image` when asked for and present. */
  currentImage?: string;
}

export function readProgress(json: unknown): A1111Progress | undefined {
  const progress = field(json, 'progress');
  const state = field(json, 'state');
  if (typeof progress !== 'number' || typeof state !== 'object' || state === null) return undefined;
  const num = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
  const currentImage = field(json, 'current_image');
  const read: A1111Progress = {
    progress,
    etaRelative: num(field(json, 'eta_relative')),
    jobCount: num(field(state, 'job_count')),
    jobNo: num(field(state, 'job_no')),
    job: String(field(state, 'job') ?? ''),
    jobTimestamp: String(field(state, 'job_timestamp') ?? ''),
    samplingStep: num(field(state, 'sampling_step')),
    samplingSteps: num(field(state, 'sampling_steps')),
    interrupted: field(state, 'interrupted') === true,
  };
  if (typeof currentImage === 'string' && currentImage !== '') read.currentImage = currentImage;
  return read;
}

/**
 * What an A1111 error body says, in one line. Three shapes exist: FastAPI's request validation
 * (`{detail: [{loc, msg, type}]}`, 422), A1111's own exception handler
 * (`{error, detail, body, errors}`, any status) and a bare `{detail: "…"}`.
 */
export function describeA1111Error(json: unknown, text: string): string {
  const detail = field(json, 'detail');
  if (Array.isArray(detail)) {
    const problems = detail.map((item) => {
      const loc = field(item, 'loc');
      const where = Array.isArray(loc) ? loc.filter((part) => part !== 'body').join('.') : '';
      const msg = String(field(item, 'msg') ?? 'invalid');
      return where === '' ? msg : `${where}: ${msg}`;
    });
    if (problems.length > 0) return excerpt(problems.join('; '));
  }
  const error = field(json, 'error');
  const errors = field(json, 'errors');
  if (typeof detail === 'string' && detail !== '') return excerpt(detail);
  if (typeof error === 'string' && typeof errors === 'string' && errors !== '') return excerpt(`${error}: ${errors}`);
  if (typeof errors === 'string' && errors !== '') return excerpt(errors);
  if (typeof error === 'string' && error !== '') return excerpt(error);
  return text.trim() === '' ? 'no details given' : excerpt(text);
}

/** FastAPI's answer for a route that does not exist: the WebUI runs without `--api`. */
export function isRouteMissing(reply: HttpReply): boolean {
  return reply.kind === 'response' && reply.status === 404 && field(reply.json, 'detail') === 'Not Found';
}
