import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodeFrame, parseStudioFrame } from '@studio-worker/protocol';
import { encodeOffer } from '../../src/core/index.ts';
import { FREE_UPLOADS } from '../../src/core/sessions.ts';
import { capabilities, connectWorker, imageJob, llmJob, makeHarness, ManualClock, send } from './harness.ts';

describe('handshake', () => {
  it('welcomes a worker whose hello token matches, announcing our features and the lease', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const [welcome] = h.channel.of(w.connId, 'welcome');
    assert.equal(welcome?.workerId, w.workerId);
    assert.deepEqual(welcome?.protocolFeatures, ['attempt', 'progress', 'cancel', 'resume', 'prefetch', 'extended-offers', 'split-text-encoders', 'preview']);
    assert.equal(welcome?.leaseSeconds, 30);
  });

  it('refuses a wrong hello token with auth_failed and close 4001', () => {
    const h = makeHarness();
    const { workerId } = h.core.registration.createApprovedWorker('x', 'box');
    h.core.dispatcher.connectionOpened('c-bad', workerId);
    send(h, 'c-bad', { type: 'hello', authToken: 'nope', capabilities: capabilities() });
    assert.equal(h.channel.of('c-bad', 'error')[0]?.code, 'auth_failed');
    assert.equal(h.channel.closed.get('c-bad')?.code, 4001);
    assert.equal(h.channel.of('c-bad', 'welcome').length, 0);
  });

  it('answers frames before hello with protocol_violation and keeps the socket', () => {
    const h = makeHarness();
    const { workerId } = h.core.registration.createApprovedWorker('x', 'box');
    h.core.dispatcher.connectionOpened('c1', workerId);
    send(h, 'c1', { type: 'heartbeat', capabilities: capabilities() });
    assert.equal(h.channel.of('c1', 'error')[0]?.code, 'protocol_violation');
    assert.equal(h.channel.closed.has('c1'), false);
  });
});

describe('offers and results', () => {
  it('offers a new job to an idle worker with attempt 1, and stores the JSON result once', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    assert.equal(job.status, 'claimed');
    const [offer] = h.channel.of(w.connId, 'offer');
    assert.equal(offer?.claim.jobId, job.id);
    assert.equal(offer?.claim.attempt, 1);
    assert.equal(offer?.claim.modelSource.engine, 'synthetic');
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running');
    send(h, w.connId, { type: 'completeJson', jobId: job.id, attempt: 1, result: { text: 'ok' }, prompt: 'hi' });
    const done = h.core.jobs.get(job.id);
    assert.ok(done.ok);
    assert.equal(done.value.status, 'done');
    assert.deepEqual(done.value.attempts?.map((a) => [a.attempt, a.outcome]), [[1, 'done']]);
    assert.deepEqual(h.channel.of(w.connId, 'completeAck'), [{ type: 'completeAck', jobId: job.id, attempt: 1 }]);
    // A duplicate completion is refused and changes nothing.
    send(h, w.connId, { type: 'completeJson', jobId: job.id, attempt: 1, result: { text: 'second' } });
    assert.equal(h.channel.of(w.connId, 'error').at(-1)?.code, 'stale_attempt');
    const result = h.core.jobs.result(job.id);
    assert.ok(result.ok && result.value.type === 'json');
    assert.equal(result.value.json, '{"text":"ok"}');
    assert.equal(h.channel.closed.has(w.connId), false);
  });

  it('holds one offer in flight per worker and offers the next when the first ends', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const a = llmJob(h, 'a');
    const b = llmJob(h, 'b');
    assert.deepEqual(h.channel.of(w.connId, 'offer').map((o) => o.claim.jobId), [a.id]);
    assert.equal(h.core.stores.jobs.get(b.id)?.status, 'queued');
    send(h, w.connId, { type: 'accept', jobId: a.id, attempt: 1 });
    send(h, w.connId, { type: 'completeJson', jobId: a.id, attempt: 1, result: 1 });
    assert.deepEqual(h.channel.of(w.connId, 'offer').map((o) => o.claim.jobId), [a.id, b.id]);
  });

  it('routes strictly by engine: a job for an engine no worker has stays queued', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    assert.ok(h.core.models.create({ id: 'sdxl', kind: 'image', vramGbEstimate: 0, enabled: true, source: { engine: 'sd-cpp', files: [], cliDefaults: {} } }).ok);
    const job = imageJob(h, 'p', 'sdxl');
    assert.equal(job.status, 'queued');
    assert.equal(h.channel.of(w.connId, 'offer').length, 0);
    // A worker that has sd-cpp gets it.
    const sd = connectWorker(h, capabilities({ supportedModelsPerKind: { image: ['sd-cpp:*'] }, taskKinds: ['image'] }));
    assert.equal(h.channel.of(sd.connId, 'offer')[0]?.claim.jobId, job.id);
  });

  it('respects the VRAM threshold and the kinds a worker serves', () => {
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ vramThresholdGb: 4 }));
    assert.ok(h.core.models.create({ id: 'big', kind: 'image', vramGbEstimate: 8, enabled: true, source: { engine: 'synthetic', files: [], cliDefaults: {} } }).ok);
    const big = imageJob(h, 'p', 'big');
    const tts = h.core.jobs.create({ model: 'synthetic-tts', task: { kind: 'audio_tts', text: 'x', voice: 'default', ext: 'wav' }, gameId: '', assetName: '', priority: 0 });
    assert.ok(tts.ok);
    assert.equal(big.status, 'queued');
    assert.equal(tts.value.status, 'queued');
    assert.equal(h.channel.of(w.connId, 'offer').length, 0);
  });

  it('offers higher priority first, then oldest', () => {
    const h = makeHarness();
    const low = llmJob(h, 'low');
    const high = h.core.jobs.create({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'high' }], maxTokens: 1, temperature: 0 }, gameId: '', assetName: '', priority: 5 });
    assert.ok(high.ok);
    const w = connectWorker(h);
    assert.equal(h.channel.of(w.connId, 'offer')[0]?.claim.jobId, high.value.id);
    send(h, w.connId, { type: 'completeJson', jobId: high.value.id, attempt: 1, result: 1 });
    assert.equal(h.channel.of(w.connId, 'offer')[1]?.claim.jobId, low.id);
  });

  it('does not offer to a paused worker (autoEnabled false)', () => {
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ autoEnabled: false }));
    const job = llmJob(h);
    assert.equal(job.status, 'queued');
    send(h, w.connId, { type: 'heartbeat', capabilities: capabilities({ autoEnabled: true }) });
    assert.equal(h.channel.of(w.connId, 'offer')[0]?.claim.jobId, job.id);
  });
});

describe('refusals, failures and retries', () => {
  it('a busy refusal does not count, is not re-offered to that worker until its next heartbeat, and goes to another worker', () => {
    const h = makeHarness();
    const w1 = connectWorker(h);
    const job = llmJob(h);
    send(h, w1.connId, { type: 'reject', jobId: job.id, reason: 'worker already has an in-flight job', code: 'busy', attempt: 1 });
    const row = h.core.stores.jobs.get(job.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.attempt, 1);
    assert.equal(row?.failures, 0);
    assert.equal(h.channel.of(w1.connId, 'offer').length, 1, 'no immediate re-offer (no spin)');
    const w2 = connectWorker(h);
    assert.equal(h.channel.of(w2.connId, 'offer')[0]?.claim.jobId, job.id);
    assert.equal(h.channel.of(w2.connId, 'offer')[0]?.claim.attempt, 1);
  });

  it('after a busy refusal the next heartbeat offers again', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'reject', jobId: job.id, reason: 'busy', code: 'busy', attempt: 1 });
    assert.equal(h.channel.of(w.connId, 'offer').length, 1);
    send(h, w.connId, { type: 'heartbeat', capabilities: capabilities() });
    assert.equal(h.channel.of(w.connId, 'offer').length, 2);
  });

  it('an unsupported refusal keeps that job away from that worker for a while', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'reject', jobId: job.id, reason: 'no engine', code: 'unsupported', attempt: 1 });
    send(h, w.connId, { type: 'heartbeat', capabilities: capabilities() });
    assert.equal(h.channel.of(w.connId, 'offer').length, 1);
    h.clock.advance(61_000);
    send(h, w.connId, { type: 'heartbeat', capabilities: capabilities() });
    assert.equal(h.channel.of(w.connId, 'offer').length, 2);
  });

  it('a retryable failure requeues with the next attempt after backoff, and the cap fails it with the last error', () => {
    const h = makeHarness({ defaultMaxAttempts: 3, cooldownAfterFailures: 99 });
    const w = connectWorker(h);
    const job = llmJob(h);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const offer = h.channel.of(w.connId, 'offer').at(-1);
      assert.equal(offer?.claim.attempt, attempt);
      send(h, w.connId, { type: 'accept', jobId: job.id, attempt });
      send(h, w.connId, { type: 'fail', jobId: job.id, attempt, error: `boom ${attempt}`, retryable: true, code: 'engine_error' });
      assert.deepEqual(h.channel.of(w.connId, 'failAck').at(-1), { type: 'failAck', jobId: job.id, attempt });
      if (attempt < 3) {
        const row = h.core.stores.jobs.get(job.id);
        assert.equal(row?.status, 'queued');
        assert.equal(row?.attempt, attempt + 1);
        assert.equal(h.channel.of(w.connId, 'offer').length, attempt, 'not before the backoff');
        h.clock.advance(1000 * 2 ** (attempt - 1));
        h.core.dispatcher.tick();
      }
    }
    const final = h.core.jobs.get(job.id);
    assert.ok(final.ok);
    assert.equal(final.value.status, 'failed');
    assert.equal(final.value.failures, 3);
    assert.equal(final.value.lastError, 'boom 3');
    assert.deepEqual(final.value.attempts?.map((a) => a.outcome), ['failed', 'failed', 'failed']);
  });

  it('a non-retryable failure fails at once', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'fail', jobId: job.id, attempt: 1, error: 'bad input', retryable: false, code: 'bad_input' });
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'failed');
  });

  it('a handed-back job is requeued at once with the next attempt and uses no attempt', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    send(h, w.connId, { type: 'fail', jobId: job.id, attempt: 1, error: 'shutting down', retryable: true, code: 'handed_back' });
    const row = h.core.stores.jobs.get(job.id);
    assert.equal(row?.attempt, 2);
    assert.equal(row?.failures, 0);
    // The same worker is idle again, so it gets attempt 2 right away.
    assert.equal(h.channel.of(w.connId, 'offer').at(-1)?.claim.attempt, 2);
  });

  it('three consecutive failures put the worker in cooldown', () => {
    const h = makeHarness({ cooldownAfterFailures: 3, cooldownMs: 60_000, retryBackoffMs: 0 });
    const w = connectWorker(h);
    for (let i = 0; i < 3; i++) {
      const job = llmJob(h, `j${i}`);
      send(h, w.connId, { type: 'fail', jobId: job.id, attempt: 1, error: 'oom', retryable: false });
    }
    const next = llmJob(h, 'after');
    assert.equal(next.status, 'queued');
    const view = h.core.stores.workers.get(w.workerId);
    assert.ok((view?.cooldown_until ?? 0) > h.clock.now());
    h.clock.advance(60_001);
    send(h, w.connId, { type: 'heartbeat', capabilities: capabilities() });
    assert.equal(h.channel.of(w.connId, 'offer').at(-1)?.claim.jobId, next.id);
  });
});

describe('leases, disconnects and stale results', () => {
  it('sweeps an expired lease: the job returns with the next attempt, and the old attempt result is refused', () => {
    const h = makeHarness({ leaseMs: 10_000 });
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    h.core.dispatcher.connectionClosed(w.connId, 1006);
    h.clock.advance(9_000);
    h.core.dispatcher.tick();
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running', 'a resumable worker keeps its claim within the lease');
    h.clock.advance(2_000);
    h.core.dispatcher.tick();
    const row = h.core.stores.jobs.get(job.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.attempt, 2);
    assert.equal(row?.losses, 1);
    assert.equal(row?.failures, 0);
    // The worker comes back with its old result: refused as stale, session kept.
    const again = connectWorker(h, capabilities(), { workerId: w.workerId, authToken: w.authToken });
    send(h, again.connId, { type: 'completeJson', jobId: job.id, attempt: 1, result: 'late' });
    const error = h.channel.of(again.connId, 'error').find((e) => e.jobId === job.id);
    assert.equal(error?.code, 'stale_attempt');
    assert.equal(h.channel.closed.has(again.connId), false);
  });

  it('heartbeats renew leases', () => {
    const h = makeHarness({ leaseMs: 10_000, staleSessionMs: 60_000 });
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    for (let i = 0; i < 5; i++) {
      h.clock.advance(5_000);
      send(h, w.connId, { type: 'heartbeat', capabilities: capabilities(), currentJobId: job.id });
      h.core.dispatcher.tick();
    }
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running');
  });

  it('an original worker (no resume) hands its claim back the moment its socket closes', () => {
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ protocolFeatures: undefined }));
    const job = llmJob(h);
    send(h, w.connId, { type: 'accept', jobId: job.id });
    h.core.dispatcher.connectionClosed(w.connId, 1006);
    const row = h.core.stores.jobs.get(job.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.attempt, 2);
  });

  it('an original worker never gets our extension error frames: a stale result is acked', () => {
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ protocolFeatures: undefined }));
    send(h, w.connId, { type: 'completeJson', jobId: 'job-unknown', result: 1 });
    assert.deepEqual(h.channel.of(w.connId, 'completeAck'), [{ type: 'completeAck', jobId: 'job-unknown' }]);
    assert.equal(h.channel.of(w.connId, 'error').length, 0);
  });

  it('prefetch: a job whose worker only uploads its result frees its slot, so the engine gets the next job meanwhile', () => {
    const features = ['attempt', 'progress', 'cancel', 'resume', 'prefetch'];
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ protocolFeatures: features, prefetchSlots: 1 }));
    const a = llmJob(h, 'a');
    const b = llmJob(h, 'b');
    const c = llmJob(h, 'c');
    assert.deepEqual(h.channel.of(w.connId, 'offer').map((o) => o?.claim.jobId), [a.id, b.id], 'two slots: one running, one prefetched');
    send(h, w.connId, { type: 'accept', jobId: a.id, attempt: 1 });
    send(h, w.connId, { type: 'accept', jobId: b.id, attempt: 1 });
    send(h, w.connId, { type: 'progress', jobId: a.id, attempt: 1, phase: 'generating', step: 3, total: 4 });
    assert.equal(h.channel.of(w.connId, 'offer').length, 2, 'a job still on the engine holds its slot');
    send(h, w.connId, { type: 'progress', jobId: a.id, attempt: 1, phase: 'uploading' });
    assert.deepEqual(h.channel.of(w.connId, 'offer').map((o) => o?.claim.jobId), [a.id, b.id, c.id], 'c offered while a uploads');
    assert.equal(h.core.stores.jobs.get(a.id)?.status, 'running', 'a stays claimed (and leased) until its result arrives');
    send(h, w.connId, { type: 'progress', jobId: a.id, attempt: 1, phase: 'uploading' });
    assert.equal(h.channel.of(w.connId, 'offer').length, 3, 'a repeated phase frees nothing more');
  });

  it('prefetch: two uploads are free of charge; a third waiting upload holds a slot again (uploads that do not keep up stop new offers)', () => {
    const features = ['attempt', 'progress', 'cancel', 'resume', 'prefetch'];
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ protocolFeatures: features, prefetchSlots: 1 }));
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => llmJob(h, name)) as Array<ReturnType<typeof llmJob>>;
    const offered = () => h.channel.of(w.connId, 'offer').map((o) => o?.claim.jobId);
    const id = (job: ReturnType<typeof llmJob> | undefined) => job?.id as string;
    for (const job of [a, b]) send(h, w.connId, { type: 'accept', jobId: id(job), attempt: 1 });
    send(h, w.connId, { type: 'progress', jobId: id(a), attempt: 1, phase: 'uploading' });
    assert.deepEqual(offered(), [a, b, c].map(id), 'a uploads: c offered');
    send(h, w.connId, { type: 'accept', jobId: id(c), attempt: 1 });
    send(h, w.connId, { type: 'progress', jobId: id(b), attempt: 1, phase: 'uploading' });
    assert.deepEqual(offered(), [a, b, c, d].map(id), 'b uploads while a still does (a long upload): both free, so d offered');
    send(h, w.connId, { type: 'accept', jobId: id(d), attempt: 1 });
    send(h, w.connId, { type: 'progress', jobId: id(c), attempt: 1, phase: 'uploading' });
    assert.deepEqual(offered(), [a, b, c, d].map(id), `c waits behind two uploads: the prefetch slot is c's again (FREE_UPLOADS ${FREE_UPLOADS})`);
    send(h, w.connId, { type: 'completeJson', jobId: id(a), attempt: 1, result: { ok: true } });
    assert.deepEqual(offered(), [a, b, c, d, e].map(id), 'a delivered: two uploads left, so e is offered');
  });

  it('without prefetch, an uploading job keeps its slot (a worker that did not announce it may refuse)', () => {
    const h = makeHarness();
    const w = connectWorker(h, capabilities({ protocolFeatures: ['attempt', 'progress', 'cancel', 'resume'] }));
    const a = llmJob(h, 'a');
    llmJob(h, 'b');
    send(h, w.connId, { type: 'accept', jobId: a.id, attempt: 1 });
    send(h, w.connId, { type: 'progress', jobId: a.id, attempt: 1, phase: 'uploading' });
    assert.equal(h.channel.of(w.connId, 'offer').length, 1);
  });

  it('resume: a reconnecting worker keeps the jobs it lists and loses the ones it does not', () => {
    const h = makeHarness({ retryBackoffMs: 0 });
    const w = connectWorker(h, capabilities({ protocolFeatures: [...['attempt', 'progress', 'cancel', 'resume', 'prefetch']], prefetchSlots: 1 }));
    const a = llmJob(h, 'a');
    const b = llmJob(h, 'b');
    assert.equal(h.channel.of(w.connId, 'offer').length, 2, 'prefetch: a second offer while the first runs');
    send(h, w.connId, { type: 'accept', jobId: a.id, attempt: 1 });
    send(h, w.connId, { type: 'accept', jobId: b.id, attempt: 1 });
    h.core.dispatcher.connectionClosed(w.connId, 1006);
    h.core.dispatcher.connectionOpened('c-again', w.workerId);
    send(h, 'c-again', {
      type: 'hello',
      authToken: w.authToken,
      capabilities: capabilities({ protocolFeatures: ['attempt', 'progress', 'cancel', 'resume'] }),
      inFlight: [{ jobId: a.id, attempt: 1, state: 'running' }],
    });
    assert.equal(h.core.stores.jobs.get(a.id)?.status, 'running');
    const lostB = h.core.stores.jobs.get(b.id);
    assert.equal(lostB?.attempt, 2);
    assert.equal(lostB?.losses, 1);
    send(h, 'c-again', { type: 'completeJson', jobId: a.id, attempt: 1, result: 'a' });
    assert.equal(h.core.stores.jobs.get(a.id)?.status, 'done');
  });

  it('resume: a job listed as running that is no longer this worker’s gets a cancel', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    h.core.dispatcher.connectionOpened('c2', w.workerId);
    send(h, 'c2', { type: 'hello', authToken: w.authToken, capabilities: capabilities(), inFlight: [{ jobId: 'job-gone', attempt: 3, state: 'running' }] });
    assert.deepEqual(h.channel.of('c2', 'cancel').map((c) => c.jobId), ['job-gone']);
  });

  it('a studio restart keeps claims until their lease runs out, then requeues them', () => {
    const path = join(tmpdir(), `studio-core-${process.pid}-${Date.now()}.sqlite`);
    const clock = new ManualClock();
    const first = makeHarness({ leaseMs: 10_000 }, path, clock);
    const w = connectWorker(first);
    const job = llmJob(first);
    send(first, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    first.sql.close();
    const second = makeHarness({ leaseMs: 10_000 }, path, clock);
    assert.equal(second.core.stores.jobs.get(job.id)?.status, 'running');
    clock.advance(10_001);
    assert.equal(second.core.dispatcher.sweepLeases(), 1);
    const row = second.core.stores.jobs.get(job.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.attempt, 2);
    second.sql.close();
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        unlinkSync(path + suffix);
      } catch {}
    }
  });

  it('takes back an offer a live worker never answers, and tells the worker to drop it', () => {
    const h = makeHarness({ offerAnswerMs: 30_000, staleSessionMs: 120_000 });
    const silent = connectWorker(h);
    const job = llmJob(h);
    for (let i = 0; i < 6; i++) {
      h.clock.advance(5_000);
      send(h, silent.connId, { type: 'heartbeat', capabilities: capabilities() });
      h.core.dispatcher.tick();
    }
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'claimed', 'heartbeats keep the claim within the answer window');
    h.clock.advance(1);
    h.core.dispatcher.tick();
    const row = h.core.stores.jobs.get(job.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.attempt, 2);
    assert.equal(row?.failures, 0);
    assert.equal(row?.losses, 0);
    assert.deepEqual(h.channel.of(silent.connId, 'cancel').map((c) => c.jobId), [job.id]);
    // Another worker gets it.
    const other = connectWorker(h);
    assert.equal(h.channel.of(other.connId, 'offer')[0]?.claim.attempt, 2);
  });

  it('closes a session that stops heartbeating', () => {
    const h = makeHarness({ staleSessionMs: 30_000 });
    const w = connectWorker(h);
    h.clock.advance(30_001);
    h.core.dispatcher.tick();
    assert.equal(h.channel.closed.get(w.connId)?.code, 1000);
    assert.equal(h.core.dispatcher.sessionCount(), 0);
  });
});

describe('duplicates, cancellation, protocol hygiene', () => {
  it('a second session for one worker id closes the older with duplicate_worker + 4003 and inherits its claims', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    const newer = connectWorker(h, capabilities(), { workerId: w.workerId, authToken: w.authToken });
    assert.equal(h.channel.of(w.connId, 'error')[0]?.code, 'duplicate_worker');
    assert.equal(h.channel.closed.get(w.connId)?.code, 4003);
    assert.equal(h.channel.of(newer.connId, 'welcome').length, 1);
    // The older socket's close event later must not release anything.
    h.core.dispatcher.connectionClosed(w.connId, 4003);
    // The newer process did not list the job in its hello, so it does not have it: the claim is
    // lost (attempt 2) and, the newer session being idle, offered to it again.
    const row = h.core.stores.jobs.get(job.id);
    assert.equal(row?.attempt, 2);
    assert.equal(row?.losses, 1);
    assert.deepEqual(h.channel.of(newer.connId, 'offer').map((o) => [o.claim.jobId, o.claim.attempt]), [[job.id, 2]]);
  });

  it('cancelling a running job sends cancel; the worker’s fail(cancelled) frees the slot', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    const next = llmJob(h, 'next');
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    const cancelled = h.core.jobs.cancel(job.id);
    assert.ok(cancelled.ok);
    assert.equal(cancelled.value.status, 'cancelled');
    assert.deepEqual(h.channel.of(w.connId, 'cancel'), [{ type: 'cancel', jobId: job.id, attempt: 1, reason: 'cancelled by operator' }]);
    assert.equal(h.channel.of(w.connId, 'offer').length, 1, 'the slot stays taken until the worker stops');
    send(h, w.connId, { type: 'fail', jobId: job.id, attempt: 1, error: 'cancelled by studio', retryable: false, code: 'cancelled' });
    assert.deepEqual(h.channel.of(w.connId, 'failAck').at(-1), { type: 'failAck', jobId: job.id, attempt: 1 });
    assert.equal(h.channel.of(w.connId, 'offer').at(-1)?.claim.jobId, next.id);
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'cancelled');
  });

  it('a queued job cancels at once; retry requeues a cancelled job with the next attempt', () => {
    const h = makeHarness();
    const job = llmJob(h);
    assert.ok(h.core.jobs.cancel(job.id).ok);
    const again = h.core.jobs.cancel(job.id);
    assert.ok(!again.ok && again.error.status === 409);
    const retried = h.core.jobs.retry(job.id);
    assert.ok(retried.ok);
    assert.equal(retried.value.status, 'queued');
    assert.equal(retried.value.attempt, 2);
    assert.equal(retried.value.lastError, undefined, 'a retried job starts clean; its history stays in attempts');
  });

  it('malformed frames get protocol_violation; unknown types are ignored; repeated abuse closes with 4002', () => {
    const h = makeHarness({ maxViolations: 3 });
    const w = connectWorker(h);
    h.core.dispatcher.handleText(w.connId, '{"type":"teleport"}');
    assert.equal(h.channel.of(w.connId, 'error').length, 0);
    h.core.dispatcher.handleText(w.connId, '{"type":"accept"}');
    h.core.dispatcher.handleText(w.connId, 'not json');
    assert.equal(h.channel.of(w.connId, 'error').length, 2);
    assert.equal(h.channel.closed.has(w.connId), false);
    h.core.dispatcher.handleBinary(w.connId);
    assert.equal(h.channel.closed.get(w.connId)?.code, 4002);
  });

  it('stores the latest progress of a running job', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    send(h, w.connId, { type: 'progress', jobId: job.id, attempt: 1, phase: 'generating', step: 3, total: 8, fraction: 0.375 });
    const view = h.core.jobs.get(job.id);
    assert.ok(view.ok);
    assert.equal(view.value.progress?.step, 3);
    assert.equal(view.value.progress?.phase, 'generating');
  });

  it('ingests log batches per worker', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    send(h, w.connId, { type: 'logBatch', entries: [{ ts: '2026-11-22T10:00:00.000Z', level: 'info', category: 'ws', message: 'hello' }] });
    const rows = h.sql.all<{ message: string; worker_id: string }>('SELECT message, worker_id FROM worker_logs');
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ message: 'hello', worker_id: w.workerId }]);
  });

  it('encodeOffer equals encoding the parsed offer frame', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    imageJob(h, 'quote " and \\ and ünïcode');
    const row = h.sql.get<{ id: string; attempt: number; model: string; game_id: string; asset_name: string; vram_gb_estimate: number; task: string; model_source: string }>(
      'SELECT id, attempt, model, game_id, asset_name, vram_gb_estimate, task, model_source FROM jobs',
    );
    assert.ok(row);
    const fast = encodeOffer(row);
    const parsed = parseStudioFrame(fast);
    assert.ok(parsed.ok);
    assert.equal(fast, encodeFrame(parsed.frame));
    assert.equal(h.channel.of(w.connId, 'offer').length, 1);
  });
});
