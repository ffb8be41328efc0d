// The embedded host over real HTTP and WebSockets: routes, bad input, auth, streamed uploads.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { get } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { silentLogger } from '@studio-worker/log';
import { SUBPROTOCOL, type StudioFrame } from '@studio-worker/protocol';
import { startStudio, type RunningStudio } from '../../src/node/server.ts';

const ADMIN = 'admin-test-token';
let studio: RunningStudio;
let dataDir: string;

function api(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? ADMIN}`);
  return fetch(`${studio.url}/graphics/api${path}`, { ...init, headers });
}

function json(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
}

async function newWorker(label = 'w'): Promise<{ workerId: string; authToken: string }> {
  const res = await api('/workers', json({ label }));
  assert.equal(res.status, 201);
  return (await res.json()) as { workerId: string; authToken: string };
}

/** A scripted worker over a real socket: frames arrive in a queue we can await. */
class ScriptedWorker {
  readonly ws: WebSocket;
  private readonly frames: StudioFrame[] = [];
  private waiters: Array<() => void> = [];
  closed?: { code: number; reason: string };
  constructor(url: string, token: string) {
    this.ws = new WebSocket(url, SUBPROTOCOL, { headers: { authorization: `Bearer ${token}` } });
    this.ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()));
      this.wake();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }
  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }
  send(frame: object) {
    this.ws.send(JSON.stringify(frame));
  }
  /** The next frame of this type (frames of other types are kept). */
  async next<T extends StudioFrame['type']>(type: T): Promise<Extract<StudioFrame, { type: T }>> {
    for (;;) {
      const index = this.frames.findIndex((f) => f.type === type);
      if (index >= 0) return this.frames.splice(index, 1)[0] as Extract<StudioFrame, { type: T }>;
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) before a ${type} frame`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
  async closedWith(): Promise<{ code: number; reason: string }> {
    while (!this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.closed;
  }
}

const caps = {
  machineName: 'box',
  username: 'ada',
  agentVersion: '0.1.0',
  engine: 'multi',
  vramTotalGb: 0,
  vramThresholdGb: 12,
  autoEnabled: true,
  autoStart: false,
  supportedModels: ['synthetic', 'synthetic-image'],
  taskKinds: ['image'],
  supportedModelsPerKind: { image: ['synthetic', 'synthetic-image'] },
  protocolFeatures: ['attempt', 'progress', 'cancel', 'resume'],
};

async function connect(w: { workerId: string; authToken: string }): Promise<ScriptedWorker> {
  const sw = new ScriptedWorker(`${studio.url.replace('http', 'ws')}/graphics/api/workers/${w.workerId}/connect`, w.authToken);
  await sw.opened();
  sw.send({ type: 'hello', authToken: w.authToken, capabilities: caps });
  await sw.next('welcome');
  return sw;
}

function upload(workerId: string, token: string, jobId: string, parts: { attempt?: string; ext?: string; bytes?: Uint8Array; field?: string }): Promise<Response> {
  const form = new FormData();
  form.append('prompt', 'a fox');
  if (parts.ext !== undefined) form.append('ext', parts.ext);
  if (parts.attempt !== undefined) form.append('attempt', parts.attempt);
  if (parts.bytes) form.append(parts.field ?? 'image', new Blob([parts.bytes], { type: 'image/png' }), `${jobId}.png`);
  return fetch(`${studio.url}/graphics/api/workers/${workerId}/jobs/${jobId}/complete`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${token}` },
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'studio-http-'));
  studio = await startStudio({ dataDir, port: 0, host: '127.0.0.1', adminToken: ADMIN, log: silentLogger, maxUploadBytes: 1024 * 1024, registerRequestsPerMinute: 3 });
});

after(async () => {
  await studio.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('bad input gets a clear status and message, and stores nothing', () => {
  it('401 without or with a wrong admin token', async () => {
    for (const token of [null, 'wrong']) {
      const res = await api('/jobs', { token });
      assert.equal(res.status, 401);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(body.error, 'unauthorized');
      assert.match(body.message, /Authorization: Bearer/);
    }
  });

  it('415 for a non-JSON body, 400 for malformed JSON, 400 naming the field for an invalid task', async () => {
    const before = (await (await api('/jobs')).json()) as { jobs: unknown[] };
    const r1 = await api('/jobs', { method: 'POST', body: 'model=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(r1.status, 415);
    const r2 = await api('/jobs', { method: 'POST', body: '{"model":', headers: { 'content-type': 'application/json' } });
    assert.equal(r2.status, 400);
    assert.equal(((await r2.json()) as { error: string }).error, 'invalid_json');
    const r3 = await api('/jobs', json({ model: 'synthetic-image', task: { kind: 'image', prompt: 3 } }));
    assert.equal(r3.status, 400);
    assert.match(((await r3.json()) as { message: string }).message, /task\.prompt/);
    const r4 = await api('/jobs', json({ model: 'nope', task: { kind: 'image', prompt: 'x' } }));
    assert.equal(r4.status, 400);
    assert.match(((await r4.json()) as { message: string }).message, /not in the registry; known models: .*synthetic-image/);
    const r5 = await api('/jobs', json({ model: 'synthetic-llm', task: { kind: 'image', prompt: 'x' } }));
    assert.equal(((await r5.json()) as { error: string }).error, 'kind_mismatch');
    const after = (await (await api('/jobs')).json()) as { jobs: unknown[] };
    assert.equal(after.jobs.length, before.jobs.length, 'nothing was created');
  });

  it('a batch with one bad entry creates none and names the entry', async () => {
    const before = (await (await api('/jobs')).json()) as { jobs: unknown[] };
    const res = await api('/jobs/batch', json({ jobs: [{ model: 'synthetic-image', task: { kind: 'image', prompt: 'ok' } }, { model: 'gone', task: { kind: 'image', prompt: 'x' } }] }));
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /^jobs\[1\]: /);
    const after = (await (await api('/jobs')).json()) as { jobs: unknown[] };
    assert.equal(after.jobs.length, before.jobs.length);
  });

  it('POST /jobs (answered outside hono, the dispatch-latency path) answers like the hono routes', async () => {
    const same = async (a: Response, b: Response) => {
      assert.equal(a.status, b.status);
      assert.equal(a.headers.get('content-type')?.split(';')[0], 'application/json');
      assert.deepEqual(await a.json(), await b.json());
    };
    // 401: the same body as any admin route.
    await same(await api('/jobs', { ...json({}), token: null }), await api('/jobs/batch', { ...json({}), token: null }));
    // 415 and 400: the same checks as the hono routes' readJson.
    const form = { method: 'POST', body: 'model=x', headers: { 'content-type': 'text/plain' } };
    await same(await api('/jobs', form), await api('/jobs/batch', form));
    const broken = { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } };
    await same(await api('/jobs', broken), await api('/jobs/batch', broken));
    // 413 also for a chunked body (no content-length), read with the same cap.
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new TextEncoder().encode(`${i === 0 ? '{"x":"' : ''}${'y'.repeat(1024 * 1024)}`));
        controller.close();
      },
    });
    const chunked = await api('/jobs', { method: 'POST', body: chunks, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    assert.equal(chunked.status, 413);
    // 201 with the job.
    const created = await api('/jobs', json({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'hi' }] } }));
    assert.equal(created.status, 201);
    const job = (await created.json()) as { id: string; status: string };
    assert.match(job.id, /^job-[0-9a-f]{16}$/);
    assert.equal(((await (await api(`/jobs/${job.id}`)).json()) as { id: string }).id, job.id);
  });

  it('413 for a JSON body over 4 MiB', async () => {
    const res = await api('/jobs', json({ model: 'synthetic-image', task: { kind: 'image', prompt: 'x'.repeat(5 * 1024 * 1024) } }));
    assert.equal(res.status, 413);
  });

  it('unknown routes and ids answer 404 with a message', async () => {
    assert.equal((await api('/nope')).status, 404);
    const res = await api('/jobs/job-missing');
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: string }).error, 'unknown_job');
    assert.equal((await api('/jobs?status=bogus')).status, 400);
  });

  it('models: create, PATCH only what is given, disable → jobs refused', async () => {
    const created = await api('/models', json({ id: 'slow-image', kind: 'image', vramGbEstimate: 2, source: { engine: 'synthetic', cliDefaults: { delayMs: 50 } } }));
    assert.equal(created.status, 201);
    assert.equal((await api('/models', json({ id: 'slow-image', kind: 'image', source: { engine: 'synthetic' } }))).status, 409);
    const patched = await api('/models/slow-image', { method: 'PATCH', body: JSON.stringify({ enabled: false }), headers: { 'content-type': 'application/json' } });
    const model = (await patched.json()) as { enabled: boolean; vramGbEstimate: number };
    assert.equal(model.enabled, false);
    assert.equal(model.vramGbEstimate, 2, 'a PATCH leaves other fields alone');
    const refused = await api('/jobs', json({ model: 'slow-image', task: { kind: 'image', prompt: 'x' } }));
    assert.equal(((await refused.json()) as { error: string }).error, 'model_disabled');
  });
});

describe('registration over HTTP', () => {
  it('register-request → pending → approve → poll with the secret → token → the socket opens', async () => {
    const secret = 'f'.repeat(64);
    const res = await api('/workers/register-request', {
      ...json({ installId: 'inst-http-1', registrationSecretHash: createHash('sha256').update(secret).digest('hex'), capabilities: caps, userAgent: 'studio-worker/0.1.0' }),
      token: null,
    });
    assert.equal(res.status, 200);
    const { requestId } = (await res.json()) as { requestId: string };
    const pending = (await (await api('/workers/pending')).json()) as { requests: Array<{ requestId: string; sourceIp: string }> };
    assert.ok(pending.requests.some((r) => r.requestId === requestId));
    assert.equal((await api(`/workers/register-requests/${requestId}`, { token: 'not-the-secret' })).status, 401);
    assert.deepEqual(await (await api(`/workers/register-requests/${requestId}`, { token: secret })).json(), { status: 'pending' });
    const approved = await api(`/workers/pending/${requestId}/approve`, { method: 'POST' });
    assert.equal(approved.status, 200);
    const creds = (await (await api(`/workers/register-requests/${requestId}`, { token: secret })).json()) as { status: string; workerId: string; authToken: string };
    assert.equal(creds.status, 'approved');
    const sw = await connect(creds);
    const workers = (await (await api('/workers')).json()) as { workers: Array<{ id: string; state: string }> };
    assert.equal(workers.workers.find((w) => w.id === creds.workerId)?.state, 'online');
    sw.ws.close();
  });

  it('rate-limits register-request per source address with 429 and Retry-After', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 5 && !limited; i++) {
      const res = await api('/workers/register-request', { ...json({ installId: `inst-rl-${i}`, registrationSecretHash: 'a'.repeat(64), capabilities: caps }), token: null });
      if (res.status === 429) limited = res;
    }
    assert.ok(limited, 'expected a 429 within 5 requests at 3 per minute');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
  });
});

describe('worker sockets', () => {
  it('refuses an upgrade with a wrong token (401) or without the subprotocol (400)', async () => {
    const w = await newWorker();
    const url = `${studio.url.replace('http', 'ws')}/graphics/api/workers/${w.workerId}/connect`;
    const status = (ws: WebSocket) =>
      new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(await status(new WebSocket(url, SUBPROTOCOL, { headers: { authorization: 'Bearer nope' } })), 401);
    assert.equal(await status(new WebSocket(url, 'other', { headers: { authorization: `Bearer ${w.authToken}` } })), 400);
  });

  it('a second connection with the same credentials closes the older with duplicate_worker and 4003', async () => {
    const w = await newWorker();
    const first = await connect(w);
    const second = await connect(w);
    const error = await first.next('error');
    assert.equal(error.code, 'duplicate_worker');
    assert.equal((await first.closedWith()).code, 4003);
    assert.equal(second.closed, undefined);
    second.ws.close();
  });

  it('a deleted worker is told so (worker_deleted, 4004)', async () => {
    const w = await newWorker();
    const sw = await connect(w);
    assert.equal((await api(`/workers/${w.workerId}`, { method: 'DELETE' })).status, 200);
    assert.equal((await sw.next('error')).code, 'worker_deleted');
    assert.equal((await sw.closedWith()).code, 4004);
  });
});

describe('binary result uploads', () => {
  const png = new Uint8Array(
    Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64'),
  );

  it('stores the current attempt’s file, serves it, and refuses a stale attempt with 409', async () => {
    const w = await newWorker();
    const sw = await connect(w);
    const created = (await (await api('/jobs', json({ model: 'synthetic-image', task: { kind: 'image', prompt: 'upload me', ext: 'png' } }))).json()) as { id: string };
    const offer = await sw.next('offer');
    assert.equal(offer.claim.jobId, created.id);
    sw.send({ type: 'accept', jobId: created.id, attempt: 1 });
    const stale = await upload(w.workerId, w.authToken, created.id, { attempt: '2', ext: 'png', bytes: png });
    assert.equal(stale.status, 409);
    assert.equal(((await stale.json()) as { error: string }).error, 'stale_attempt');
    const ok = await upload(w.workerId, w.authToken, created.id, { attempt: '1', ext: 'png', bytes: png });
    assert.equal(ok.status, 200);
    const job = (await (await api(`/jobs/${created.id}`)).json()) as { status: string; result: { url: string; mime: string; bytes: number } };
    assert.equal(job.status, 'done');
    assert.equal(job.result.mime, 'image/png');
    assert.equal(job.result.bytes, png.length);
    const served = await fetch(`${studio.url}${job.result.url}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(served.headers.get('content-type'), 'image/png');
    assert.deepEqual(new Uint8Array(await served.arrayBuffer()), png);
    // A second upload for the finished job is refused too.
    assert.equal((await upload(w.workerId, w.authToken, created.id, { attempt: '1', ext: 'png', bytes: png })).status, 409);
    assert.deepEqual(readdirSync(join(dataDir, 'results', '.incoming')), [], 'no partial files left behind');
    sw.ws.close();
  });

  it('401 with a wrong token, 415 without multipart, 400 without the image part, 413 over the limit — nothing kept', async () => {
    const w = await newWorker();
    const sw = await connect(w);
    const created = (await (await api('/jobs', json({ model: 'synthetic-image', task: { kind: 'image', prompt: 'bad uploads' } }))).json()) as { id: string };
    await sw.next('offer');
    assert.equal((await upload(w.workerId, 'wrong', created.id, { ext: 'png', bytes: png })).status, 401);
    const notMultipart = await fetch(`${studio.url}/graphics/api/workers/${w.workerId}/jobs/${created.id}/complete`, {
      method: 'POST',
      body: 'x',
      headers: { authorization: `Bearer ${w.authToken}`, 'content-type': 'text/plain' },
    });
    assert.equal(notMultipart.status, 415);
    const missing = await upload(w.workerId, w.authToken, created.id, { ext: 'png', bytes: png, field: 'picture' });
    assert.equal(missing.status, 400);
    assert.match(((await missing.json()) as { message: string }).message, /"image"/);
    const big = await upload(w.workerId, w.authToken, created.id, { ext: 'png', bytes: new Uint8Array(2 * 1024 * 1024) });
    assert.equal(big.status, 413);
    const job = (await (await api(`/jobs/${created.id}`)).json()) as { status: string };
    assert.equal(job.status, 'claimed', 'the job is untouched');
    assert.deepEqual(readdirSync(join(dataDir, 'results', '.incoming')), []);
    sw.ws.close();
  });
});

describe('the dashboard and the web kit it shares with the worker UI', () => {
  /** A GET with the path sent as written (fetch would resolve `..` and `%2e%2e` before sending). */
  function rawGet(path: string): Promise<{ status: number; type: string; body: string }> {
    const { hostname, port } = new URL(studio.url);
    return new Promise((resolve, reject) => {
      get({ hostname, port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
      }).on('error', reject);
    });
  }

  it('serves /kit/ files from the kit and the dashboard links the kit stylesheet', async () => {
    const dom = await rawGet('/kit/dom.js');
    assert.equal(dom.status, 200);
    assert.equal(dom.type, 'text/javascript; charset=utf-8');
    assert.match(dom.body, /export function h\(/);
    assert.equal((await rawGet('/kit/base.css')).type, 'text/css; charset=utf-8');
    assert.match((await rawGet('/')).body, /href="\/kit\/base\.css"/);
  });

  it('serves nothing outside the kit dir under /kit/', async () => {
    for (const path of ['/kit/../package.json', '/kit/%2e%2e/package.json', '/kit/..%2fpackage.json', '/kit/%2e%2e/src/index.ts', '/kit/', '/kit/missing.js', '/kit/..%5cpackage.json']) {
      assert.equal((await rawGet(path)).status, 404, path);
    }
  });
});
