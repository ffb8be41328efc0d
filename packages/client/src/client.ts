import {
  API_PREFIX,
  type ApiError,
  type CreateJobInput,
  type CreatedToken,
  type CreatedWebhook,
  type StorageView,
  type WebhookDeliveryView,
  type WebhookView,
  type CreateJobsBatchResult,
  type JobLookupResult,
  type JobStatus,
  type JobView,
  type KeyedJobInput,
  type ModelEntryInput,
  type ModelView,
  type PendingRequestView,
  type TokenScope,
  type TokenView,
  type WorkerView,
} from '@studio-worker/protocol';

/**
 * A typed client for the studio's HTTP API (both hosts serve the same routes). Web `fetch` only, so
 * it runs in Node, browsers and Workers. Network errors, 429 and 5xx answers are retried with
 * exponential backoff and jitter; every submit carries an idempotency key (the caller's or a fresh
 * one reused across the retries), so a retried POST never makes a second job.
 */
export interface ClientOptions {
  /** The studio's base URL, e.g. http://127.0.0.1:4780 (the API prefix is added). */
  url: string;
  /** Bearer token: the admin token or an API token. */
  token?: string;
  /** Tries after the first one (default 5). */
  retries?: number;
  /** First backoff delay (default 250 ms), doubling up to maxDelayMs (default 8 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-request time limit (default 60 s); a timed-out request counts as a network error. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Called before each retry: what failed and how long the client waits. */
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; reason: string }) => void;
}

/** A studio answer that is not 2xx: its status, the studio's error code and its message. */
export class StudioApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'StudioApiError';
    this.status = status;
    this.code = code;
  }
}

export interface JobListFilter {
  status?: JobStatus;
  before?: number;
  limit?: number;
}

export interface JobList {
  jobs: JobView[];
  nextBefore?: number;
  counts: Record<string, number>;
}

const TERMINAL = new Set<JobStatus>(['done', 'failed', 'cancelled']);

function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

export class StudioClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly opts: Required<Pick<ClientOptions, 'retries' | 'baseDelayMs' | 'maxDelayMs' | 'timeoutMs'>>;
  private readonly fetchImpl: typeof fetch;
  private readonly onRetry: ClientOptions['onRetry'];

  constructor(options: ClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '') + API_PREFIX;
    this.token = options.token;
    this.opts = {
      retries: options.retries ?? 5,
      baseDelayMs: options.baseDelayMs ?? 250,
      maxDelayMs: options.maxDelayMs ?? 8000,
      timeoutMs: options.timeoutMs ?? 60_000,
    };
    this.fetchImpl = options.fetch ?? fetch;
    this.onRetry = options.onRetry;
  }

  /** One call with retries; answers the final 2xx response (its body unread) or throws StudioApiError. */
  async request(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    for (let attempt = 0; ; attempt++) {
      let reason: string;
      try {
        const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(this.opts.timeoutMs)]) : AbortSignal.timeout(this.opts.timeoutMs);
        const res = await this.fetchImpl(this.baseUrl + path, { method, headers, body, signal });
        if (res.ok) return res;
        const error = await errorOf(res);
        if (!retryable(res.status) || attempt >= this.opts.retries) throw error;
        reason = `${res.status} ${error.code}`;
      } catch (error) {
        if (error instanceof StudioApiError) throw error;
        if (options.signal?.aborted) throw error;
        if (attempt >= this.opts.retries) {
          throw new StudioApiError(0, 'unreachable', `${method} ${path}: the studio at ${this.baseUrl} did not answer after ${attempt + 1} tries (${(error as Error).message})`);
        }
        reason = (error as Error).message;
      }
      const delayMs = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** attempt) * (0.5 + Math.random() / 2);
      this.onRetry?.({ method, path, attempt: attempt + 1, delayMs, reason });
      await sleep(delayMs, options.signal);
    }
  }

  async json<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.request(method, path, { body, headers });
    return (await res.json()) as T;
  }

  health(): Promise<{ ok: boolean; version: string; workersOnline: number }> {
    return this.json('GET', '/health');
  }

  // ------------------------------------------------------------ jobs

  /** Submit one job. `replayed` is true when the key had already made this job (nothing new was made). */
  async createJob(job: CreateJobInput, options: { idempotencyKey?: string } = {}): Promise<{ job: JobView; replayed: boolean }> {
    const key = options.idempotencyKey ?? newKey();
    const res = await this.request('POST', '/jobs', { body: job, headers: { 'idempotency-key': key } });
    return { job: (await res.json()) as JobView, replayed: res.status === 200 };
  }

  /** Submit up to 1000 jobs in one transaction; entries without a key get one, so a retry makes nothing twice. */
  createJobs(jobs: readonly KeyedJobInput[]): Promise<CreateJobsBatchResult> {
    return this.json('POST', '/jobs/batch', { jobs: jobs.map((job) => (job.key ? job : { ...job, key: newKey() })) });
  }

  job(id: string): Promise<JobView> {
    return this.json('GET', `/jobs/${encodeURIComponent(id)}`);
  }

  jobs(filter: JobListFilter = {}): Promise<JobList> {
    const query = new URLSearchParams();
    if (filter.status) query.set('status', filter.status);
    if (filter.before !== undefined) query.set('before', String(filter.before));
    if (filter.limit !== undefined) query.set('limit', String(filter.limit));
    const qs = query.size ? `?${query}` : '';
    return this.json('GET', `/jobs${qs}`);
  }

  /** Up to 1000 jobs by id in one call. */
  lookup(ids: readonly string[]): Promise<JobLookupResult> {
    return this.json('POST', '/jobs/lookup', { ids });
  }

  cancel(id: string): Promise<JobView> {
    return this.json('POST', `/jobs/${encodeURIComponent(id)}/cancel`);
  }

  retry(id: string): Promise<JobView> {
    return this.json('POST', `/jobs/${encodeURIComponent(id)}/retry`);
  }

  /** The result of a done job as a streaming response (a file, or JSON for text results). */
  result(id: string, signal?: AbortSignal): Promise<Response> {
    return this.request('GET', `/jobs/${encodeURIComponent(id)}/result`, { signal });
  }

  /** Poll until the job ends (done, failed or cancelled). */
  async wait(id: string, options: { intervalMs?: number; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<JobView> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      const job = await this.job(id);
      if (TERMINAL.has(job.status)) return job;
      if (Date.now() > deadline) throw new StudioApiError(0, 'timeout', `job ${id} is still ${job.status} after ${options.timeoutMs} ms`);
      await sleep(options.intervalMs ?? 1000, options.signal);
    }
  }

  // ------------------------------------------------------------ API tokens (admin)

  /** Create a scoped token; the answer holds the token itself, shown this once. */
  createToken(name: string, scope: TokenScope): Promise<CreatedToken> {
    return this.json('POST', '/tokens', { name, scope });
  }

  async tokens(): Promise<TokenView[]> {
    return (await this.json<{ tokens: TokenView[] }>('GET', '/tokens')).tokens;
  }

  revokeToken(id: string): Promise<TokenView> {
    return this.json('POST', `/tokens/${encodeURIComponent(id)}/revoke`);
  }

  // ------------------------------------------------------------ webhooks, retention (admin)

  createWebhook(url: string, events?: Array<'done' | 'failed' | 'cancelled'>): Promise<CreatedWebhook> {
    return this.json('POST', '/webhooks', events ? { url, events } : { url });
  }

  async webhooks(): Promise<WebhookView[]> {
    return (await this.json<{ webhooks: WebhookView[] }>('GET', '/webhooks')).webhooks;
  }

  deleteWebhook(id: string): Promise<{ ok: true; id: string }> {
    return this.json('DELETE', `/webhooks/${encodeURIComponent(id)}`);
  }

  deliveries(webhookId: string, status?: 'pending' | 'delivered' | 'failed'): Promise<WebhookDeliveryView[]> {
    return this.json('GET', `/webhooks/${encodeURIComponent(webhookId)}/deliveries${status ? `?status=${status}` : ''}`);
  }

  storage(): Promise<StorageView> {
    return this.json('GET', '/storage');
  }

  /** Run the retention now (default: the studio's configured age). */
  gc(olderThanDays?: number): Promise<StorageView & { olderThanDays: number; expiredJobs: number; freedBytes: number; prunedEvents: number }> {
    return this.json('POST', '/gc', olderThanDays === undefined ? {} : { olderThanDays });
  }

  // ------------------------------------------------------------ workers

  async workers(): Promise<WorkerView[]> {
    return (await this.json<{ workers: WorkerView[] }>('GET', '/workers')).workers;
  }

  /** A worker approved at once, without the pending queue (provisioning); its token is answered only now. */
  createWorker(label: string, machineName?: string): Promise<{ workerId: string; authToken: string }> {
    return this.json('POST', '/workers', machineName === undefined ? { label } : { label, machineName });
  }

  async pending(): Promise<PendingRequestView[]> {
    return (await this.json<{ requests: PendingRequestView[] }>('GET', '/workers/pending')).requests;
  }

  approve(requestId: string, label?: string): Promise<unknown> {
    return this.json('POST', `/workers/pending/${encodeURIComponent(requestId)}/approve`, label ? { label } : {});
  }

  reject(requestId: string, reason = ''): Promise<unknown> {
    return this.json('POST', `/workers/pending/${encodeURIComponent(requestId)}/reject`, { reason });
  }

  deleteWorker(id: string): Promise<{ ok: boolean; workerId: string }> {
    return this.json('DELETE', `/workers/${encodeURIComponent(id)}`);
  }

  // ------------------------------------------------------------ models

  async models(): Promise<ModelView[]> {
    return (await this.json<{ models: ModelView[] }>('GET', '/models')).models;
  }

  addModel(entry: ModelEntryInput): Promise<ModelView> {
    return this.json('POST', '/models', entry);
  }

  disableModel(id: string): Promise<ModelView> {
    return this.json('POST', `/models/${encodeURIComponent(id)}/disable`);
  }

  enableModel(id: string): Promise<ModelView> {
    return this.json('POST', `/models/${encodeURIComponent(id)}/enable`);
  }
}

function newKey(): string {
  return `auto-${crypto.randomUUID()}`;
}

async function errorOf(res: Response): Promise<StudioApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<ApiError>;
    if (typeof body.error === 'string') return new StudioApiError(res.status, body.error, body.message ?? body.error);
  } catch {
    // not the studio's JSON error shape (a proxy's page)
  }
  return new StudioApiError(res.status, `http_${res.status}`, `${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
