// An original (Rust) studio-worker against the REAL studio process: a test peer with the original's
// parser strictness (original-schemas.ts, written from original-spec.md §4) walks the original's
// flows (§3.1–§3.8). Any frame it cannot parse ends its session, so each step also asserts the
// session is still alive: a drift in what we send to feature-less peers fails here.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JobView, ModelView, PendingRequestView, WorkerView } from '@studio-worker/protocol';
import { startStudioProcess, type StudioProc } from '../../../../test/helpers/processes.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';
import { SEED_MODELS } from '../../src/core/seeds.ts';
import {
  ORIGINAL_USER_AGENT,
  OriginalPeer,
  originalCapabilities,
  pollRegistration,
  requestRegistration,
} from './original-peer.ts';
import { ORIGINAL_ENGINES, ORIGINAL_ROLES, type OriginalClaim } from './original-schemas.ts';

let dir: string;
let studio: StudioProc;
let creds: { workerId: string; authToken: string };
let peer: OriginalPeer;

/**
 * The peer lists every engine of the original plus, hypothetically, `comfyui:*`: even a peer that
 * claims an engine its parser cannot name is never offered such a job.
 */
const CAPS = originalCapabilities({
  supportedModelsPerKind: { ...originalCapabilities().supportedModelsPerKind, image: ['comfyui:*', 'sd-cpp:*', 'onnx:*', 'synthetic', 'synthetic-image'] },
});

function peerWith(c = creds): OriginalPeer {
  return new OriginalPeer({ baseUrl: studio.url, workerId: c.workerId, authToken: c.authToken, capabilities: CAPS, heartbeatMs: 150 });
}

/** Live while a session runs: fails loudly with what the peer could not parse. */
function assertAlive(p: OriginalPeer): void {
  assert.equal(p.outcome, undefined, `the original's session ended: ${JSON.stringify(p.outcome)}`);
}

/** The next offer after `seen` offers. */
async function nextOffer(p: OriginalPeer, seen: number): Promise<OriginalClaim> {
  return waitFor(`offer #${seen + 1} to the original peer`, () => {
    if (p.outcome) throw new Error(`session ended: ${JSON.stringify(p.outcome)}`);
    return p.offers()[seen];
  });
}

/** Let the studio pass `n` more offer opportunities (it offers on every heartbeat of an idle worker). */
async function heartbeatsPass(p: OriginalPeer, n: number): Promise<void> {
  const acks = p.count('heartbeatAck');
  await waitFor(`${n} more heartbeat acks`, () => p.count('heartbeatAck') >= acks + n || p.outcome);
  assertAlive(p);
}

async function createJob(model: string, task: unknown): Promise<JobView> {
  const [job] = await studio.api.createJobs([{ model, task }]);
  assert.ok(job);
  return job;
}

async function jobStatus(id: string, status: string): Promise<JobView> {
  return waitFor(`job ${id} to be ${status}`, async () => {
    const job = await studio.api.job(id);
    return job.status === status ? job : undefined;
  });
}

const TASKS: Record<string, unknown> = {
  'synthetic-image': { kind: 'image', prompt: 'an aurora fox', ext: 'png' },
  'synthetic-llm': { kind: 'llm', messages: [{ role: 'user', content: 'hello there' }], reasoning: 'low' },
  'synthetic-stt': { kind: 'audio_stt', inputUrl: 'https://example.com/a.wav', language: 'nl' },
  'synthetic-tts': { kind: 'audio_tts', text: 'hello' },
  'synthetic-video': { kind: 'video', prompt: 'waves', seconds: 1 },
  'z-image-turbo-q4_k_m.gguf': { kind: 'image', prompt: 'a lighthouse', seed: 42 },
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'original-peer-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio') });
});

after(async () => {
  peer?.close();
  await studio?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('an original studio-worker against the real studio', () => {
  it('registers (§3.1): pending with its body userAgent, approved by the operator, then polls its credentials', async () => {
    const pending = await requestRegistration(studio.url, CAPS);
    assert.deepEqual(await pollRegistration(studio.url, pending), { status: 'pending' });
    const listed = await studio.api.json<{ requests: PendingRequestView[] }>('GET', '/workers/pending');
    const request = listed.requests.find((r) => r.requestId === pending.requestId);
    assert.ok(request);
    assert.equal(request.userAgent, ORIGINAL_USER_AGENT, 'the body userAgent names the worker, not its HTTP client');
    await studio.api.json('POST', `/workers/pending/${pending.requestId}/approve`, {});
    const approved = await pollRegistration(studio.url, pending);
    assert.equal(approved.status, 'approved');
    if (approved.status !== 'approved') return;
    creds = { workerId: approved.workerId, authToken: approved.authToken };
    const worker = await studio.api.json<WorkerView>('GET', `/workers/${creds.workerId}`);
    assert.equal(worker.userAgent, ORIGINAL_USER_AGENT);
  });

  it('hello → a bare welcome; heartbeats are acknowledged', async () => {
    peer = await peerWith().connect();
    assertAlive(peer);
    assert.ok(peer.welcomed);
    const welcome = peer.frames.find((f) => f.type === 'welcome');
    assert.deepEqual(Object.keys(welcome ?? {}).sort(), ['serverTime', 'type', 'workerId']);
    await heartbeatsPass(peer, 3);
    const worker = await studio.api.json<WorkerView>('GET', `/workers/${creds.workerId}`);
    assert.equal(worker.state, 'online');
  });

  it('takes an offer of every task kind; files go over multipart, JSON over completeJson', async () => {
    const kinds = ['synthetic-image', 'synthetic-llm', 'synthetic-stt', 'synthetic-tts', 'synthetic-video'];
    const seen = peer.offers().length;
    const jobs = await studio.api.createJobs(kinds.map((model) => ({ model, task: TASKS[model] })));
    for (let i = 0; i < jobs.length; i++) {
      const claim = await nextOffer(peer, seen + i);
      const status = await peer.run(claim);
      if (status !== undefined) assert.equal(status, 200, `upload of ${claim.task.kind}`);
      await jobStatus(claim.jobId, 'done');
    }
    const offered = peer.offers().slice(seen);
    assert.deepEqual(offered.map((c) => c.task.kind).sort(), ['audio_stt', 'audio_tts', 'image', 'llm', 'video']);
    const image = offered.find((c) => c.task.kind === 'image');
    assert.equal(image?.task.kind === 'image' && image.task.width, 512, 'an absent size is sent as the model default');
    const llm = offered.find((c) => c.task.kind === 'llm');
    assert.equal(llm?.task.kind === 'llm' && llm.task.reasoning, 'low');
    const tts = jobs.find((j) => j.model === 'synthetic-tts');
    const result = await studio.api.result(tts?.id ?? '');
    assert.equal(new TextDecoder().decode(result.bytes), `audio_tts result for ${tts?.id}`);
    assert.ok(peer.count('completeAck') >= 2, 'completeJson results are acknowledged');
    assertAlive(peer);
  });

  it('every seeded model its engine allows is offered in a shape it parses; the others are never offered and the models list says why', async () => {
    for (const seed of SEED_MODELS) {
      const compatible = (ORIGINAL_ENGINES as readonly string[]).includes(seed.source.engine) && (seed.source.files ?? []).every((f) => (ORIGINAL_ROLES as readonly string[]).includes(f.role));
      const task = TASKS[seed.id] ?? { kind: seed.kind, prompt: `a ${seed.id} test` };
      const seen = peer.offers().length;
      const job = await createJob(seed.id, task);
      if (!compatible) {
        await heartbeatsPass(peer, 3);
        assert.equal(peer.offers().length, seen, `${seed.id} (engine ${seed.source.engine}) is never offered to the original`);
        const models = await studio.api.json<{ models: ModelView[] }>('GET', '/models');
        const view = models.models.find((m) => m.id === seed.id);
        assert.equal(view?.workersOnline, 0);
        assert.match(view?.waitingReason ?? '', /original protocol/);
        await studio.api.json('POST', `/jobs/${job.id}/cancel`);
        continue;
      }
      const claim = await nextOffer(peer, seen);
      assert.equal(claim.jobId, job.id);
      assert.equal(claim.modelSource.engine, seed.source.engine);
      if (seed.id === 'z-image-turbo-q4_k_m.gguf') {
        assert.deepEqual(claim.modelSource.cliDefaults, { cfgScale: 1, steps: 8, width: 1024, height: 1024, samplingMethod: 'euler' });
        assert.equal(claim.task.kind === 'image' && claim.task.width, 1024, 'the model size, not the original’s 512 default');
        assert.equal(claim.task.kind === 'image' && claim.task.seed, 42);
      }
      if (claim.modelSource.engine === 'synthetic') {
        await peer.run(claim);
        await jobStatus(job.id, 'done');
      } else {
        peer.accept(claim.jobId);
        peer.fail(claim.jobId, 'sd-cli exited with 1: no Vulkan loader', false);
        await jobStatus(job.id, 'failed');
      }
      assertAlive(peer);
    }
  });

  it('a model registered without cliDefaults gets its engine defaults; an unknown file role is never offered and said why', async () => {
    await studio.api.json('POST', '/models', { id: 'plain-sd', kind: 'image', source: { engine: 'sd-cpp', files: [{ role: 'model', url: 'https://example.com/m.safetensors', filename: 'm.safetensors' }] } });
    const model = await studio.api.json<ModelView>('GET', '/models/plain-sd');
    assert.deepEqual(model.source.cliDefaults, { cfgScale: 1, steps: 8, width: 1024, height: 1024 });
    // An update that drops numbers gets them back from the engine; the ones given are kept.
    const patched = await studio.api.json<ModelView>('PATCH', '/models/plain-sd', { source: { ...model.source, cliDefaults: { steps: 4, samplingMethod: 'euler' } } });
    assert.deepEqual(patched.source.cliDefaults, { steps: 4, samplingMethod: 'euler', cfgScale: 1, width: 1024, height: 1024 });
    let seen = peer.offers().length;
    const plain = await createJob('plain-sd', { kind: 'image', prompt: 'p' });
    const claim = await nextOffer(peer, seen);
    assert.equal(claim.jobId, plain.id);
    peer.accept(claim.jobId);
    peer.fail(claim.jobId, 'no sd-cli', false);
    await jobStatus(plain.id, 'failed');

    await studio.api.json('POST', '/models', {
      id: 'vision-llm',
      kind: 'llm',
      source: { engine: 'llama-cpp', files: [{ role: 'model', url: 'https://example.com/v.gguf', filename: 'v.gguf' }, { role: 'mmproj', url: 'https://example.com/p.gguf', filename: 'p.gguf' }] },
    });
    seen = peer.offers().length;
    const vision = await createJob('vision-llm', { kind: 'llm', messages: [{ role: 'user', content: 'what is this?' }] });
    await heartbeatsPass(peer, 3);
    assert.equal(peer.offers().length, seen, 'a job needing the mmproj role is never offered to the original');
    assert.equal((await studio.api.job(vision.id)).status, 'queued');
    const models = await studio.api.json<{ models: ModelView[] }>('GET', '/models');
    assert.match(models.models.find((m) => m.id === 'vision-llm')?.waitingReason ?? '', /"mmproj"/);
    // …while a job the original can read still goes through behind it.
    const next = await createJob('synthetic-llm', TASKS['synthetic-llm']);
    const offered = await nextOffer(peer, seen);
    assert.equal(offered.jobId, next.id);
    await peer.run(offered);
    await jobStatus(next.id, 'done');
    await studio.api.json('POST', `/jobs/${vision.id}/cancel`);
  });

  it('refuses at job creation what the original cannot parse: a negative seed, a non-string reasoning (400)', async () => {
    const negative = await studio.api.request('POST', '/jobs', { model: 'synthetic-image', task: { kind: 'image', prompt: 'p', seed: -1 } });
    assert.equal(negative.status, 400);
    assert.match(await negative.text(), /seed must be 0 or more/);
    const reasoning = await studio.api.request('POST', '/jobs', { model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'x' }], reasoning: { effort: 'high' } } });
    assert.equal(reasoning.status, 400);
    assert.match(await reasoning.text(), /reasoning/);
  });

  it('pauses through autoEnabled:false (§3.7): no offers until it resumes', async () => {
    peer.paused = true;
    await heartbeatsPass(peer, 2);
    const seen = peer.offers().length;
    const job = await createJob('synthetic-llm', TASKS['synthetic-llm']);
    await heartbeatsPass(peer, 3);
    assert.equal(peer.offers().length, seen, 'a paused worker gets no offers');
    assert.equal((await studio.api.job(job.id)).status, 'queued');
    peer.paused = false;
    const claim = await nextOffer(peer, seen);
    assert.equal(claim.jobId, job.id);
    await peer.run(claim);
    await jobStatus(job.id, 'done');
  });

  it('a retryable failure is acknowledged, and the job is offered again and completes (§3.6)', async () => {
    const seen = peer.offers().length;
    const job = await createJob('synthetic-image', TASKS['synthetic-image']);
    const first = await nextOffer(peer, seen);
    peer.accept(first.jobId);
    peer.fail(first.jobId, 'sd-cli exited with 1: out of memory', true);
    await waitFor('failAck', () => peer.frames.some((f) => f.type === 'failAck' && f.jobId === job.id));
    const again = await nextOffer(peer, seen + 1);
    assert.equal(again.jobId, job.id);
    assert.equal(await peer.run(again), 200);
    const done = await jobStatus(job.id, 'done');
    assert.equal(done.failures, 1);
    assertAlive(peer);
  });

  it('cancelling its running job sends it nothing; its late upload is refused (409) and the job stays cancelled', async () => {
    const seen = peer.offers().length;
    const frames = peer.frames.length;
    const job = await createJob('synthetic-image', TASKS['synthetic-image']);
    const claim = await nextOffer(peer, seen);
    peer.accept(claim.jobId);
    await jobStatus(job.id, 'running');
    await studio.api.json('POST', `/jobs/${job.id}/cancel`);
    await heartbeatsPass(peer, 3);
    const sinceOffer = peer.frames.slice(frames).map((f) => f.type);
    assert.deepEqual([...new Set(sinceOffer)].sort(), ['heartbeatAck', 'offer'], 'no cancel (or any other) frame reaches the original');
    const upload = await peer.upload(claim, new Uint8Array([1, 2, 3]), 'png');
    assert.equal(upload.status, 409);
    // The original turns a refused upload into fail {retryable:true} (§3.5); that must not revive the job.
    peer.fail(claim.jobId, `upload failed: 409 — ${upload.body}`, true);
    await waitFor('failAck for the cancelled job', () => peer.frames.some((f) => f.type === 'failAck' && f.jobId === job.id));
    await heartbeatsPass(peer, 2);
    assert.equal((await studio.api.job(job.id)).status, 'cancelled');
  });

  it('log batches (§3.8): any level, any length, any count, and never an error frame', async () => {
    type Page = { entries: Array<{ level: string; category: string; message: string }>; next: number };
    const readAll = async (from: number) => {
      const all: Page['entries'] = [];
      let after = from;
      for (;;) {
        const page = await studio.api.json<Page>('GET', `/workers/${creds.workerId}/logs?after=${after}&limit=1000`);
        all.push(...page.entries);
        after = page.next;
        if (page.entries.length < 1000) return { all, next: after };
      }
    };
    const ts = new Date().toISOString();
    const start = (await readAll(0)).next;
    peer.send({ type: 'logBatch', entries: [
      { ts, level: 'notice', category: 'ws', message: 'a level the studio does not know' },
      { ts, level: 'warn', category: 'x'.repeat(300), message: 'y'.repeat(100_000), jobId: 'job-none' },
    ] });
    await heartbeatsPass(peer, 2);
    const first = await readAll(start);
    assert.equal(first.all[0]?.level, 'info', 'an unknown level is stored as info');
    const long = first.all[1];
    assert.ok(long && long.message.length <= 8192 && /clipped/.test(long.message), 'a long message is clipped, and says so');
    assert.ok(long && long.category.length <= 64);

    peer.send({ type: 'logBatch', entries: Array.from({ length: 6000 }, (_, i) => ({ ts, level: 'info', category: 'bulk', message: `line ${i}` })) });
    await heartbeatsPass(peer, 3);
    assert.equal(peer.count('error'), 0, 'no error frame for any of it');
    const bulk = (await readAll(first.next)).all;
    const kept = bulk.filter((e) => e.category === 'bulk').map((e) => e.message);
    // The first 5,000 of the batch are stored. The per-worker retention (the newest 5,000 lines, a
    // periodic chore) may already have cut the oldest of them: the batch and its note are 5,001.
    assert.equal(kept.at(-1), 'line 4999', 'the batch is kept up to its 5,000th entry');
    assert.ok(!kept.includes('line 5000'), 'nothing past the 5,000th is stored');
    assert.ok(kept.length === 5000 || (kept.length === 4999 && kept[0] === 'line 1'), `kept ${kept.length} lines, from ${kept[0]}`);
    assert.match(bulk.at(-1)?.message ?? '', /dropped 1000/, 'the dropped entries are counted');
  });

  it('killed mid-job and restarted (§8): the job is handed back and offered again to the new session', async () => {
    const seen = peer.offers().length;
    const job = await createJob('synthetic-llm', TASKS['synthetic-llm']);
    const claim = await nextOffer(peer, seen);
    peer.accept(claim.jobId);
    await jobStatus(job.id, 'running');
    peer.kill();
    // No other worker is online, so the lost claim waits in the queue (handed back at once: the
    // original cannot resume, so the studio does not wait for the lease).
    const lost = await jobStatus(job.id, 'queued');
    assert.equal(lost.workerId, undefined);
    peer = await peerWith().connect();
    assertAlive(peer);
    const again = await nextOffer(peer, 0);
    assert.equal(again.jobId, job.id);
    await peer.run(again);
    const done = await jobStatus(job.id, 'done');
    assert.ok(done.attempt >= 2, 'a new attempt after the loss');
  });

  it('a second process with its id (4003): the older gets duplicate_worker and stops, the newer works', async () => {
    const older = peer;
    const newer = await peerWith().connect();
    assertAlive(newer);
    await waitFor('the older session to end', () => older.closeCode !== undefined && older.outcome);
    assert.deepEqual(older.outcome && { kind: older.outcome.kind, code: 'code' in older.outcome ? older.outcome.code : undefined }, { kind: 'fatal', code: 'duplicate_worker' });
    assert.equal(older.closeCode, 4003);
    peer = newer;
    const job = await createJob('synthetic-stt', TASKS['synthetic-stt']);
    const claim = await nextOffer(peer, 0);
    assert.equal(claim.jobId, job.id);
    await peer.run(claim);
    await jobStatus(job.id, 'done');
  });

  it('deleted by the operator (4004): worker_deleted ends its session, and again on a reconnect', async () => {
    await studio.api.json('DELETE', `/workers/${creds.workerId}`);
    await waitFor('the session to end', () => peer.closeCode !== undefined && peer.outcome);
    assert.equal(peer.outcome?.kind, 'fatal');
    assert.equal(peer.outcome?.kind === 'fatal' && peer.outcome.code, 'worker_deleted');
    assert.equal(peer.closeCode, 4004);
    // A reconnect (an operator restarting it by hand) is told the same, so it stops again.
    const retry = await peerWith().connect();
    await waitFor('the reconnect to end', () => retry.closeCode !== undefined && retry.outcome);
    assert.equal(retry.outcome?.kind === 'fatal' && retry.outcome.code, 'worker_deleted');
    assert.equal(retry.closeCode, 4004);
  });
});
