// A test worker that behaves as the original (Rust) studio-worker v0.4.x does on the wire
// (original-spec §3.1 registration, §3.2 session, §3.3 offers, §3.5 results, §3.6 failures, §3.7
// pause, §3.8 logs), with its parser's strictness (original-schemas.ts). It imports nothing from
// @studio-worker/protocol: URLs, subprotocol and frame shapes are written here from the spec.
import { createHash, randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import {
  OriginalRegisterCreated,
  OriginalRegistrationPoll,
  OriginalWorkerFrame,
  parseAsOriginal,
  type OriginalCapabilities,
  type OriginalClaim,
  type OriginalStudioFrame,
  type OriginalWorkerFrame as WorkerFrame,
} from './original-schemas.ts';

/** §4.5: routes live under `<api_base_url>/graphics/api`. */
function api(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/graphics/api`;
}

/** The original's HTTP client sends its own User-Agent; the body's `userAgent` names the worker (§3.1). */
const HTTP_CLIENT_UA = 'reqwest/0.12.9';
export const ORIGINAL_USER_AGENT = 'studio-worker/0.4.15';

/** What an original v0.4.15 worker with the synthetic engine and sd-cpp/llama-cpp/onnx advertises (§4.4, §6.1). */
export function originalCapabilities(over: Partial<OriginalCapabilities> = {}): OriginalCapabilities {
  return {
    machineName: 'rust-box',
    username: 'ada',
    agentVersion: '0.4.15',
    engine: 'multi',
    vramTotalGb: 24,
    vramThresholdGb: 12,
    autoEnabled: true,
    autoStart: true,
    autoUpdate: true,
    startMinimised: true,
    onlyWhenIdle: false,
    supportedModels: ['llama-cpp:*', 'onnx:*', 'sd-cpp:*', 'synthetic', 'synthetic-image', 'synthetic-llm', 'synthetic-stt', 'synthetic-tts', 'synthetic-video'],
    taskKinds: ['image', 'llm', 'audio_stt', 'audio_tts', 'video'],
    supportedModelsPerKind: {
      image: ['sd-cpp:*', 'onnx:*', 'synthetic', 'synthetic-image'],
      llm: ['llama-cpp:*', 'synthetic', 'synthetic-llm'],
      audio_stt: ['synthetic', 'synthetic-stt'],
      audio_tts: ['synthetic', 'synthetic-tts'],
      video: ['synthetic', 'synthetic-video'],
    },
    ...over,
  };
}

// ------------------------------------------------------------------ §3.1 registration

export interface PendingRegistration {
  requestId: string;
  secret: string;
}

export async function requestRegistration(baseUrl: string, capabilities: OriginalCapabilities): Promise<PendingRegistration> {
  const installId = randomBytes(16).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  const secret = randomBytes(32).toString('hex');
  const res = await fetch(`${api(baseUrl)}/workers/register-request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': HTTP_CLIENT_UA },
    body: JSON.stringify({
      installId,
      registrationSecretHash: createHash('sha256').update(secret, 'utf8').digest('hex'),
      capabilities,
      userAgent: ORIGINAL_USER_AGENT,
    }),
  });
  if (!res.ok) throw new Error(`register-request → ${res.status}: ${await res.text()}`);
  const created = OriginalRegisterCreated.parse(await res.json());
  return { requestId: created.requestId, secret };
}

export async function pollRegistration(baseUrl: string, pending: PendingRegistration) {
  const res = await fetch(`${api(baseUrl)}/workers/register-requests/${pending.requestId}`, {
    headers: { authorization: `Bearer ${pending.secret}`, 'user-agent': HTTP_CLIENT_UA },
  });
  if (!res.ok) throw new Error(`poll → ${res.status}: ${await res.text()}`);
  return OriginalRegistrationPoll.parse(await res.json());
}

// ------------------------------------------------------------------ §3.2 session

export type SessionOutcome =
  | { kind: 'auth_failed'; reason: string }
  | { kind: 'fatal'; code: string; message: string }
  | { kind: 'protocol_error'; error: string; text: string }
  | { kind: 'disconnected'; closeCode: number };

export interface PeerOptions {
  baseUrl: string;
  workerId: string;
  authToken: string;
  capabilities?: OriginalCapabilities;
  heartbeatMs?: number;
}

/** §3.5: Content-Type by extension. */
function mimeFor(ext: string): string {
  return ({ png: 'image/png', webp: 'image/webp', gif: 'image/gif', wav: 'audio/wav', mp3: 'audio/mpeg', mp4: 'video/mp4' } as Record<string, string>)[ext] ?? 'application/octet-stream';
}

/** §3.5 `prompt_for(task)`. */
export function promptFor(task: OriginalClaim['task']): string {
  switch (task.kind) {
    case 'image':
    case 'video':
      return task.prompt;
    case 'llm':
      return task.messages.at(-1)?.content ?? '';
    case 'audio_stt':
      return task.inputUrl;
    case 'audio_tts':
      return task.text;
  }
}

export class OriginalPeer {
  readonly opts: Required<PeerOptions>;
  /** Every frame the studio sent that parsed, in order (frames before welcome included). */
  readonly frames: OriginalStudioFrame[] = [];
  /** Set once the session ended, and why. */
  outcome: SessionOutcome | undefined;
  closeCode: number | undefined;
  welcomed = false;
  /** §3.7: a runtime-only flag; heartbeats then say autoEnabled:false. */
  paused = false;
  /** §3.2: the running studio job, omitted from heartbeats when idle. */
  currentJobId: string | undefined;
  heartbeatsSent = 0;
  private ws: WebSocket | undefined;
  private pump: NodeJS.Timeout | undefined;

  constructor(opts: PeerOptions) {
    this.opts = { capabilities: originalCapabilities(), heartbeatMs: 200, ...opts };
  }

  get alive(): boolean {
    return this.outcome === undefined;
  }

  offers(): OriginalClaim[] {
    return this.frames.flatMap((f) => (f.type === 'offer' ? [f.claim] : []));
  }

  count(type: OriginalStudioFrame['type']): number {
    return this.frames.filter((f) => f.type === type).length;
  }

  /** Upgrade with the bearer and subprotocol, send hello, and resolve once welcomed or ended. */
  async connect(): Promise<this> {
    const url = `${api(this.opts.baseUrl).replace(/^http/, 'ws')}/workers/${encodeURIComponent(this.opts.workerId)}/connect`;
    const ws = new WebSocket(url, 'studio-worker-v1', { headers: { authorization: `Bearer ${this.opts.authToken}` } });
    this.ws = ws;
    await new Promise<void>((resolve) => {
      ws.once('unexpected-response', (_req, res) => {
        this.end({ kind: res.statusCode === 401 ? 'auth_failed' : 'disconnected', ...(res.statusCode === 401 ? { reason: `upgrade answered 401` } : { closeCode: res.statusCode ?? 0 }) } as SessionOutcome);
        resolve();
      });
      ws.once('error', () => {
        this.end({ kind: 'disconnected', closeCode: 1006 });
        resolve();
      });
      ws.once('open', () => {
        if (ws.protocol !== 'studio-worker-v1') this.end({ kind: 'protocol_error', error: `server chose subprotocol "${ws.protocol}"`, text: '' });
        this.send({ type: 'hello', authToken: this.opts.authToken, capabilities: this.capabilities() });
      });
      ws.on('message', (data, isBinary) => {
        this.onMessage(isBinary ? null : data.toString());
        if (this.welcomed || !this.alive) resolve();
      });
      ws.on('close', (code) => {
        this.closeCode = code;
        // §3.2: a bare 4001 close is AuthFailed; every other close means reconnect.
        this.end(code === 4001 ? { kind: 'auth_failed', reason: 'closed with 4001' } : { kind: 'disconnected', closeCode: code });
        resolve();
      });
    });
    return this;
  }

  private onMessage(text: string | null): void {
    if (!this.alive) return;
    if (text === null) return this.end({ kind: 'protocol_error', error: 'binary frame', text: '' });
    const parsed = parseAsOriginal(text);
    if (!parsed.ok) return this.end({ kind: 'protocol_error', error: parsed.error, text });
    const frame = parsed.frame;
    this.frames.push(frame);
    if (frame.type === 'error') {
      // §3.2: auth_failed → AuthFailed; every other code → Fatal. Either way the session is over.
      return this.end(frame.code === 'auth_failed' ? { kind: 'auth_failed', reason: frame.message } : { kind: 'fatal', code: frame.code, message: frame.message });
    }
    if (!this.welcomed) {
      // The welcome gate: anything else before welcome is discarded (an early offer is lost).
      if (frame.type === 'welcome') {
        this.welcomed = true;
        this.beat();
        this.pump = setInterval(() => this.beat(), this.opts.heartbeatMs);
      }
    }
  }

  private capabilities(): OriginalCapabilities {
    return { ...this.opts.capabilities, autoEnabled: !this.paused };
  }

  private beat(): void {
    if (!this.alive) return;
    this.send({ type: 'heartbeat', capabilities: this.capabilities(), ...(this.currentJobId ? { currentJobId: this.currentJobId } : {}) });
    this.heartbeatsSent++;
  }

  /** Send a frame in the original's exact shape (checked against its type first). */
  send(frame: WorkerFrame): void {
    const checked = OriginalWorkerFrame.parse(frame);
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(checked));
  }

  private end(outcome: SessionOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    clearInterval(this.pump);
    // Teardown (§3.2): worker-initiated closes use 1000.
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'session ended');
  }

  /** Like kill -9: the TCP connection drops, no close frame. */
  kill(): void {
    clearInterval(this.pump);
    this.ws?.terminate();
    this.outcome ??= { kind: 'disconnected', closeCode: 1006 };
  }

  close(): void {
    this.end({ kind: 'disconnected', closeCode: 1000 });
  }

  // ---------------------------------------------------------------- §3.3, §3.5, §3.6 jobs

  accept(jobId: string): void {
    this.send({ type: 'accept', jobId });
    this.currentJobId = jobId;
  }

  completeJson(claim: OriginalClaim, result: unknown): void {
    this.send({ type: 'completeJson', jobId: claim.jobId, result, prompt: promptFor(claim.task) });
    this.currentJobId = undefined;
  }

  fail(jobId: string, error: string, retryable: boolean): void {
    this.send({ type: 'fail', jobId, error, retryable });
    this.currentJobId = undefined;
  }

  /** §3.5 multipart `/complete`: fields prompt, ext and the file part always named `image`. */
  async upload(claim: OriginalClaim, bytes: Uint8Array, ext: string): Promise<{ status: number; body: string }> {
    const form = new FormData();
    form.append('prompt', promptFor(claim.task));
    form.append('ext', ext);
    form.append('image', new Blob([bytes], { type: mimeFor(ext) }), `${claim.jobId}.${ext}`);
    const res = await fetch(`${api(this.opts.baseUrl)}/workers/${this.opts.workerId}/jobs/${claim.jobId}/complete`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.opts.authToken}`, 'user-agent': HTTP_CLIENT_UA },
      body: form,
    });
    return { status: res.status, body: await res.text() };
  }

  /**
   * Run an offered job as the original's synthetic engine would answer it (§6.2 shapes): JSON kinds
   * over the socket, files over HTTP; an upload refused with 4xx is not retried and becomes
   * `fail {retryable:true}` (§3.5). Answers the upload status for file kinds.
   */
  async run(claim: OriginalClaim): Promise<number | undefined> {
    this.accept(claim.jobId);
    const task = claim.task;
    switch (task.kind) {
      case 'llm':
        this.completeJson(claim, { object: 'chat.completion', model: 'synthetic-llm', choices: [{ index: 0, message: { role: 'assistant', content: `[synthetic] reply to ${promptFor(task)}` }, finish_reason: 'stop' }] });
        return undefined;
      case 'audio_stt':
        this.completeJson(claim, { text: '[synthetic] transcript', language: task.language ?? 'en', duration: 1.0 });
        return undefined;
      default: {
        const ext = task.kind === 'audio_tts' ? 'wav' : task.kind === 'video' ? 'webp' : (task.ext ?? 'webp');
        const bytes = new TextEncoder().encode(`${task.kind} result for ${claim.jobId}`);
        const answer = await this.upload(claim, bytes, ext);
        if (answer.status >= 300) this.fail(claim.jobId, `upload failed: ${answer.status} — ${answer.body}`, true);
        this.currentJobId = undefined;
        return answer.status;
      }
    }
  }
}
