// Hibernation: a host (a Durable Object) loses the dispatcher's memory while the worker sockets stay
// open. Each session's snapshot (kept beside its socket) and the SQL bring it back in a NEW
// dispatcher, and the workers go on as if nothing happened.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { closeCodeForError } from '@studio-worker/protocol';
import { createStudioCore, type StudioCore } from '../../src/core/index.ts';
import { ALL_FEATURES, capabilities, connectWorker, imageJob, llmJob, makeHarness, send, type Harness } from './harness.ts';

const PREFETCH = capabilities({ protocolFeatures: [...ALL_FEATURES, 'prefetch'], prefetchSlots: 1 });
const IMAGE_ONLY = capabilities({ taskKinds: ['image'], supportedModels: ['synthetic', 'synthetic-image'], supportedModelsPerKind: { image: ['synthetic', 'synthetic-image'] } });

/** The host lost its memory: a new core over the same SQL, clock and sockets, sessions restored from their snapshots. */
function evictAndRestore(h: Harness, connIds: readonly string[]): StudioCore {
  const snapshots = connIds.map((id) => {
    const snap = h.core.dispatcher.sessionSnapshot(id);
    assert.ok(snap, `a snapshot of ${id}`);
    // What a Durable Object does with it: structured clone into the attachment (2,048 bytes at most).
    assert.ok(JSON.stringify(snap).length < 2048, `snapshot of ${id} is ${JSON.stringify(snap).length} bytes`);
    const cloned = structuredClone(snap);
    assert.deepEqual(cloned, snap);
    return JSON.parse(JSON.stringify(cloned)) as unknown;
  });
  const core = createStudioCore(h.ports, silentLogger, { retryBackoffMs: 1000 });
  // Sockets come back in any order (ctx.getWebSockets()).
  for (const snap of snapshots.reverse()) assert.equal(core.dispatcher.restoreSession(snap), true);
  h.core = core;
  return core;
}

describe('hibernation: sessions restored from snapshots and SQL', () => {
  it('a session with two held claims, skips and an idle neighbour carries on in a new dispatcher', () => {
    const h = makeHarness();
    const b = connectWorker(h, IMAGE_ONLY); // idle first: it gets the first image job
    const skipped = imageJob(h, 'b refuses this');
    send(h, b.connId, { type: 'reject', jobId: skipped.id, attempt: 1, reason: 'no', code: 'unsupported' });
    const a = connectWorker(h, PREFETCH);
    assert.deepEqual(h.channel.of(a.connId, 'offer').map((o) => o.claim.jobId), [skipped.id], 'A got the job B refused');
    const second = llmJob(h, 'second');
    assert.deepEqual(h.channel.of(a.connId, 'offer').map((o) => o.claim.jobId), [skipped.id, second.id], 'A holds two offers (prefetch)');
    send(h, a.connId, { type: 'accept', jobId: skipped.id, attempt: 1 });
    send(h, a.connId, { type: 'progress', jobId: skipped.id, attempt: 1, phase: 'generating', step: 3, total: 10 });
    // A third socket that has not said hello yet.
    const stranger = h.core.registration.createApprovedWorker('g', 'box');
    h.core.dispatcher.connectionOpened('c-greeting', stranger.workerId);
    const queuedBefore = imageJob(h, 'B refuses this one too; A is full');
    assert.equal(h.core.stores.jobs.get(queuedBefore.id)?.worker_id, b.workerId, 'B, idle, took the next job');
    send(h, b.connId, { type: 'reject', jobId: queuedBefore.id, attempt: 1, reason: 'no', code: 'unsupported' });
    assert.equal(h.core.stores.jobs.get(queuedBefore.id)?.status, 'queued');

    h.clock.advance(2_000);
    const core = evictAndRestore(h, [a.connId, b.connId, 'c-greeting']);
    const d = core.dispatcher;
    assert.equal(d.sessionCount(), 2);
    assert.deepEqual([...(d.session(a.workerId)?.held.keys() ?? [])].sort(), [skipped.id, second.id].sort());
    assert.equal(d.session(a.workerId)?.slots, 2, 'capabilities came back from the workers table');

    // Heartbeat renews the lease of what A lists.
    h.clock.advance(1_000);
    send(h, a.connId, { type: 'heartbeat', capabilities: PREFETCH, inFlight: [{ jobId: skipped.id, attempt: 1, state: 'running' }] });
    assert.equal(h.channel.of(a.connId, 'heartbeatAck').length, 1);
    assert.equal(core.stores.jobs.get(skipped.id)?.lease_expires_at, h.clock.now() + 30_000);
    // Accept and complete work on the restored claims.
    send(h, a.connId, { type: 'accept', jobId: second.id, attempt: 1 });
    assert.equal(core.stores.jobs.get(second.id)?.status, 'running');
    send(h, a.connId, { type: 'completeJson', jobId: skipped.id, attempt: 1, result: { text: 'ok' } });
    assert.equal(core.stores.jobs.get(skipped.id)?.status, 'done');
    assert.deepEqual(h.channel.of(a.connId, 'completeAck').at(-1), { type: 'completeAck', jobId: skipped.id, attempt: 1 });
    // A stale attempt is still refused.
    send(h, a.connId, { type: 'completeJson', jobId: skipped.id, attempt: 1, result: { text: 'again' } });
    assert.equal(h.channel.of(a.connId, 'error').at(-1)?.code, 'stale_attempt');
    // A's freed slot took the job B skips; B's skip list survived, so B was never offered it again.
    assert.equal(core.stores.jobs.get(queuedBefore.id)?.worker_id, a.workerId);
    assert.equal(h.channel.of(b.connId, 'offer').filter((o) => o.claim.jobId === queuedBefore.id).length, 1);
    // The idle session (B) gets the next offer.
    const next = imageJob(h, 'next');
    assert.equal(next.status, 'claimed');
    assert.equal(h.channel.of(b.connId, 'offer').at(-1)?.claim.jobId, next.id);

    // A duplicate socket for A's worker still displaces the restored one, and inherits its claims.
    const a2 = connectWorker(h, PREFETCH, { workerId: a.workerId, authToken: a.authToken });
    assert.equal(h.channel.of(a.connId, 'error').at(-1)?.code, 'duplicate_worker');
    assert.equal(h.channel.closed.get(a.connId)?.code, closeCodeForError('duplicate_worker'));
    assert.equal(h.channel.of(a2.connId, 'welcome').length, 1);
    assert.equal(d.session(a.workerId)?.connId, a2.connId);

    // The hello timeout applies to the restored socket that never said hello (10 s after it opened).
    assert.equal(h.channel.closed.has('c-greeting'), false);
    h.clock.advance(7_100);
    d.tick();
    assert.equal(h.channel.closed.get('c-greeting')?.code, closeCodeForError('protocol_violation'));
  });

  it('keeps released claims (cancelled while running) and an upload-only claim across the restore', () => {
    const h = makeHarness();
    const a = connectWorker(h, PREFETCH);
    const cancelled = llmJob(h, 'cancel me');
    const uploading = llmJob(h, 'uploading');
    send(h, a.connId, { type: 'accept', jobId: cancelled.id, attempt: 1 });
    send(h, a.connId, { type: 'accept', jobId: uploading.id, attempt: 1 });
    assert.ok(h.core.jobs.cancel(cancelled.id).ok);
    send(h, a.connId, { type: 'progress', jobId: uploading.id, attempt: 1, phase: 'uploading' });
    const before = h.core.dispatcher.session(a.workerId);
    const core = evictAndRestore(h, [a.connId]);
    const after = core.dispatcher.session(a.workerId);
    assert.deepEqual(after?.held, before?.held);
    // The worker confirms it stopped the cancelled job: acknowledged, not refused as stale.
    send(h, a.connId, { type: 'fail', jobId: cancelled.id, attempt: 1, error: 'cancelled', retryable: false, code: 'cancelled' });
    assert.deepEqual(h.channel.of(a.connId, 'failAck').at(-1), { type: 'failAck', jobId: cancelled.id, attempt: 1 });
    assert.equal(core.stores.jobs.get(cancelled.id)?.status, 'cancelled');
  });

  it('restored out of order, the deadlines still come oldest first (wake-up time and sweeps)', () => {
    const h = makeHarness({ staleSessionMs: 30_000, helloTimeoutMs: 10_000 });
    const older = connectWorker(h);
    h.clock.advance(5_000);
    const newer = connectWorker(h);
    const stranger = h.core.registration.createApprovedWorker('g', 'box');
    h.core.dispatcher.connectionOpened('c-late', stranger.workerId);
    h.clock.advance(1_000);
    h.core.dispatcher.connectionOpened('c-later', stranger.workerId);
    const t0 = h.clock.now() - 6_000;
    // evictAndRestore hands them back newest first.
    const core = evictAndRestore(h, [older.connId, newer.connId, 'c-late', 'c-later']);
    assert.equal(core.dispatcher.nextWakeAt(), t0 + 5_000 + 10_001, 'the older silent socket first');
    h.clock.advance(t0 + 15_001 - h.clock.now());
    core.dispatcher.tick();
    assert.ok(h.channel.closed.has('c-late'));
    assert.equal(h.channel.closed.has('c-later'), false);
    assert.equal(core.dispatcher.nextWakeAt(), t0 + 16_001);
    h.clock.advance(1_000);
    core.dispatcher.tick();
    assert.ok(h.channel.closed.has('c-later'));
    assert.equal(core.dispatcher.nextWakeAt(), t0 + 30_001, 'then the least recent heartbeat');
    h.clock.advance(t0 + 30_001 - h.clock.now());
    core.dispatcher.tick();
    assert.equal(h.channel.closed.get(older.connId)?.reason, 'no heartbeat');
    assert.equal(h.channel.closed.has(newer.connId), false, 'the newer session has 5 s left');
    assert.equal(core.dispatcher.nextWakeAt(), t0 + 35_001);
  });

  it('a lease still runs out after the restore when the worker goes silent', () => {
    const h = makeHarness();
    const a = connectWorker(h);
    const job = llmJob(h);
    send(h, a.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    const core = evictAndRestore(h, [a.connId]);
    h.clock.advance(30_001);
    core.dispatcher.tick();
    assert.equal(core.stores.jobs.get(job.id)?.status, 'queued');
    assert.equal(core.stores.jobs.get(job.id)?.attempt, 2);
    assert.equal(h.channel.closed.get(a.connId)?.reason, 'no heartbeat');
  });

  it('a worker deleted while the host slept is told so and closed on restore', () => {
    const h = makeHarness();
    const a = connectWorker(h);
    const snap = h.core.dispatcher.sessionSnapshot(a.connId);
    h.ports.sql.run('UPDATE workers SET deleted_at = 1 WHERE id = ?', a.workerId);
    const core = createStudioCore(h.ports, silentLogger);
    assert.equal(core.dispatcher.restoreSession(snap), false);
    assert.equal(h.channel.of(a.connId, 'error').at(-1)?.code, 'worker_deleted');
    assert.equal(core.dispatcher.sessionCount(), 0);
  });

  it('refuses a snapshot it cannot read, and keeps a big skip list under the attachment cap', () => {
    const h = makeHarness();
    assert.equal(h.core.dispatcher.restoreSession({ v: 2, conn: 'x' }), false);
    const a = connectWorker(h);
    const session = h.core.dispatcher.session(a.workerId);
    assert.ok(session);
    for (let i = 0; i < 200; i++) session.skip.set(`gpu-pool-with-a-long-name.job-${String(i).padStart(16, '0')}`, i === 7 ? Number.POSITIVE_INFINITY : h.clock.now() + i);
    const snap = h.core.dispatcher.sessionSnapshot(a.connId);
    assert.ok(JSON.stringify(snap).length < 2048, `${JSON.stringify(snap).length} bytes`);
    // The one for good is kept first, as null (JSON has no Infinity).
    assert.deepEqual(snap?.skip[0], ['gpu-pool-with-a-long-name.job-0000000000000007', null]);
  });
});

describe('hibernation: claims released between a worker’s own messages', () => {
  it('a cancel or a lease sweep names the session in takeChangedSessions, and the snapshot then carries the released claim through a restore', () => {
    const h = makeHarness();
    const a = connectWorker(h);
    const job = llmJob(h, 'cancelled while running');
    send(h, a.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    h.core.dispatcher.takeChangedSessions(); // whatever the hello and accept did is the host's to keep already
    // The operator cancels (a request, not a message of this worker's).
    assert.ok(h.core.jobs.cancel(job.id).ok);
    assert.deepEqual(h.core.dispatcher.takeChangedSessions(), [a.connId]);
    assert.deepEqual(h.core.dispatcher.takeChangedSessions(), [], 'each change is handed out once');
    // The host refreshes that socket's snapshot now: after an eviction the slot is still taken.
    const core = evictAndRestore(h, [a.connId]);
    assert.deepEqual([...(core.dispatcher.session(a.workerId)?.held.entries() ?? [])], [[job.id, { attempt: 1, released: true }]]);
    // A second job waits: the worker has not acknowledged the cancel yet, its only slot is in use.
    const next = llmJob(h, 'waits for the slot');
    assert.equal(core.stores.jobs.get(next.id)?.status, 'queued');
  });

  it('a closed connection is forgotten (its change is no one’s to keep)', () => {
    const h = makeHarness();
    const a = connectWorker(h);
    const job = llmJob(h, 'x');
    send(h, a.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    assert.ok(h.core.jobs.cancel(job.id).ok);
    h.core.dispatcher.connectionClosed(a.connId, 1000);
    assert.deepEqual(h.core.dispatcher.takeChangedSessions(), []);
  });
});
