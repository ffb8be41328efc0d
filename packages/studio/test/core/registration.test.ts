import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AutoRegisterRequest } from '@studio-worker/protocol';
import { capabilities, connectWorker, makeHarness, send } from './harness.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function request(installId = 'install-0001', secret = 'a'.repeat(64)): AutoRegisterRequest {
  return { installId, registrationSecretHash: sha(secret), capabilities: capabilities({ machineName: 'gpu-1' }), userAgent: 'studio-worker/0.1.0' };
}

describe('registration (original-spec §3.1)', () => {
  it('pending → approved: the poll mints a token that opens a session; every poll rotates it', () => {
    const h = makeHarness();
    const created = h.core.registration.request(request(), '10.0.0.5', 'ua');
    assert.ok(created.ok);
    const id = created.value.requestId;
    assert.match(id, /^rr-/);
    assert.deepEqual(h.core.registration.poll(id, 'a'.repeat(64)), { ok: true, value: { status: 'pending' } });
    const [pending] = h.core.registration.pending();
    assert.equal(pending?.machineName, 'gpu-1');
    assert.equal(pending?.sourceIp, '10.0.0.5');
    const approved = h.core.registration.approve(id, 'studio PC');
    assert.ok(approved.ok);
    assert.deepEqual(h.core.registration.pending(), []);
    const first = h.core.registration.poll(id, 'a'.repeat(64));
    assert.ok(first.ok && first.value.status === 'approved');
    assert.equal(first.value.workerId, approved.value.workerId);
    const second = h.core.registration.poll(id, 'a'.repeat(64));
    assert.ok(second.ok && second.value.status === 'approved');
    assert.notEqual(second.value.authToken, first.value.authToken);
    // Only the newest token works.
    const stale = connectWorker(h, capabilities(), { workerId: first.value.workerId, authToken: first.value.authToken });
    assert.equal(h.channel.closed.get(stale.connId)?.code, 4001);
    const fresh = connectWorker(h, capabilities(), { workerId: second.value.workerId, authToken: second.value.authToken });
    assert.equal(h.channel.of(fresh.connId, 'welcome').length, 1);
  });

  it('stores only hashes: neither the secret nor the token is in the database', () => {
    const h = makeHarness();
    const created = h.core.registration.request(request(), 'ip', 'ua');
    assert.ok(created.ok);
    h.core.registration.approve(created.value.requestId, undefined);
    const polled = h.core.registration.poll(created.value.requestId, 'a'.repeat(64));
    assert.ok(polled.ok && polled.value.status === 'approved');
    const dump = JSON.stringify([h.sql.all('SELECT * FROM registration_requests'), h.sql.all('SELECT * FROM workers')]);
    assert.ok(!dump.includes('a'.repeat(64)));
    assert.ok(!dump.includes(polled.value.authToken));
  });

  it('a wrong secret gets 401; an unknown request gets 404', () => {
    const h = makeHarness();
    const created = h.core.registration.request(request(), 'ip', 'ua');
    assert.ok(created.ok);
    const wrong = h.core.registration.poll(created.value.requestId, 'b'.repeat(64));
    assert.ok(!wrong.ok && wrong.error.status === 401);
    const unknown = h.core.registration.poll('rr-nope', 'a'.repeat(64));
    assert.ok(!unknown.ok && unknown.error.status === 404);
  });

  it('rejected requests answer the reason; deciding twice is a 409', () => {
    const h = makeHarness();
    const created = h.core.registration.request(request(), 'ip', 'ua');
    assert.ok(created.ok);
    assert.ok(h.core.registration.reject(created.value.requestId, 'not our machine').ok);
    assert.deepEqual(h.core.registration.poll(created.value.requestId, 'a'.repeat(64)), { ok: true, value: { status: 'rejected', reason: 'not our machine' } });
    const again = h.core.registration.approve(created.value.requestId, undefined);
    assert.ok(!again.ok && again.error.status === 409);
  });

  it('deduplicates by install id; a new secret supersedes the old request', () => {
    const h = makeHarness();
    const a = h.core.registration.request(request('install-x'), 'ip', 'ua');
    const b = h.core.registration.request(request('install-x'), 'ip', 'ua');
    assert.ok(a.ok && b.ok);
    assert.equal(a.value.requestId, b.value.requestId);
    const c = h.core.registration.request(request('install-x', 'c'.repeat(64)), 'ip', 'ua');
    assert.ok(c.ok);
    assert.notEqual(c.value.requestId, a.value.requestId);
    assert.equal(h.core.registration.pending().length, 1);
    const old = h.core.registration.poll(a.value.requestId, 'a'.repeat(64));
    assert.ok(!old.ok && old.error.status === 404, 'the superseded request is stale');
  });

  it('a pending request expires, and its poll answers 404 so the worker asks again', () => {
    const h = makeHarness({ pendingTtlMs: 60_000 });
    const created = h.core.registration.request(request(), 'ip', 'ua');
    assert.ok(created.ok);
    h.clock.advance(60_001);
    const polled = h.core.registration.poll(created.value.requestId, 'a'.repeat(64));
    assert.ok(!polled.ok && polled.error.status === 404);
    assert.deepEqual(h.core.registration.pending(), []);
  });

  it('a deleted worker is closed with worker_deleted + 4004 and its claims go back', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = h.core.jobs.create({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'x' }], maxTokens: 1, temperature: 0 }, gameId: '', assetName: '', priority: 0 });
    assert.ok(job.ok);
    send(h, w.connId, { type: 'accept', jobId: job.value.id, attempt: 1 });
    assert.ok(h.core.stores.workers.markDeleted(w.workerId, h.clock.now()));
    h.core.dispatcher.workerDeleted(w.workerId);
    assert.equal(h.channel.of(w.connId, 'error')[0]?.code, 'worker_deleted');
    assert.equal(h.channel.closed.get(w.connId)?.code, 4004);
    const row = h.core.stores.jobs.get(job.value.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.failures, 0);
  });
});
