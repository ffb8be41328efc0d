// Wake-ups: the core says when it next needs to run (a host sleeps until then: a timer, a Durable
// Object alarm), and running it then does the sweep that was due. Manual clock throughout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { closeCodeForError } from '@studio-worker/protocol';
import { createStudioCore } from '../../src/core/index.ts';
import { capabilities, connectWorker, imageJob, llmJob, makeHarness, send } from './harness.ts';

const DEADLINES = { leaseMs: 20_000, offerAnswerMs: 10_000, helloTimeoutMs: 5_000, staleSessionMs: 45_000 };

describe('housekeeping: nextWakeAt and runDue', () => {
  it('answers nothing pending for an empty studio', async () => {
    const h = makeHarness();
    assert.equal(h.core.housekeeping.nextWakeAt(), undefined);
    assert.equal(await h.core.housekeeping.runDue(), undefined);
  });

  it('wakes exactly at each deadline in turn: hello timeout, offer take-back, lease, stale session', async () => {
    const h = makeHarness(DEADLINES);
    const t0 = h.clock.now();
    const w = connectWorker(h);
    h.clock.advance(1_000);
    const stranger = h.core.registration.createApprovedWorker('g', 'box');
    h.core.dispatcher.connectionOpened('c-silent', stranger.workerId);
    h.clock.advance(1_000);
    const offered = llmJob(h, 'never answered');
    assert.equal(offered.status, 'claimed');
    const hk = h.core.housekeeping;

    // 1. The silent socket's hello deadline (opened at t0+1 s, 5 s allowed).
    assert.equal(hk.nextWakeAt(), t0 + 6_001);
    h.clock.advance(t0 + 6_000 - h.clock.now());
    assert.equal(await hk.runDue(), t0 + 6_001, 'a millisecond early: nothing done, same answer');
    assert.equal(h.channel.closed.has('c-silent'), false);
    h.clock.advance(1);
    const afterHello = await hk.runDue();
    assert.equal(h.channel.closed.get('c-silent')?.code, closeCodeForError('protocol_violation'));

    // 2. The unanswered offer (made at t0+2 s, 10 s to answer) is taken back.
    assert.equal(afterHello, t0 + 12_001);
    h.clock.advance(afterHello - h.clock.now());
    const afterOffer = await hk.runDue();
    assert.equal(h.core.stores.jobs.get(offered.id)?.status, 'queued');
    assert.equal(h.core.stores.jobs.get(offered.id)?.attempt, 2);

    // 3. The worker heartbeats (its hold is lifted), takes the job again, accepts it, then goes quiet.
    assert.equal(afterOffer, t0 + 45_001, 'next: the stale deadline of the only session');
    h.clock.advance(1_000);
    send(h, w.connId, { type: 'heartbeat', capabilities: capabilities() });
    send(h, w.connId, { type: 'accept', jobId: offered.id, attempt: 2 });
    const acceptedAt = h.clock.now();
    assert.equal(hk.nextWakeAt(), acceptedAt + 20_001, 'the running claim lease comes first');
    h.clock.advance(20_001);
    const afterLease = await hk.runDue();
    assert.equal(h.core.stores.jobs.get(offered.id)?.status, 'queued', 'swept when its lease ran out');
    assert.equal(h.core.stores.jobs.get(offered.id)?.attempt, 3);

    // 4. The session without a heartbeat for 45 s is closed at its deadline.
    assert.equal(afterLease, acceptedAt + 45_001);
    h.clock.advance(afterLease - h.clock.now());
    assert.equal(await hk.runDue(), undefined, 'nothing left once the worker is gone');
    assert.equal(h.channel.closed.get(w.connId)?.reason, 'no heartbeat');
  });

  it('wakes when a failed job backs off to its due time, and offers it to the idle worker then', async () => {
    const h = makeHarness({ ...DEADLINES, staleSessionMs: 600_000, retryBackoffMs: 4_000 });
    const w = connectWorker(h);
    const job = imageJob(h, 'fails once');
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    send(h, w.connId, { type: 'fail', jobId: job.id, attempt: 1, error: 'oom', retryable: true });
    const notBefore = h.core.stores.jobs.get(job.id)?.not_before ?? 0;
    assert.equal(notBefore, h.clock.now() + 4_000);
    assert.equal(h.core.housekeeping.nextWakeAt(), notBefore);
    h.clock.advance(4_000);
    await h.core.housekeeping.runDue();
    assert.equal(h.channel.of(w.connId, 'offer').at(-1)?.claim.attempt, 2, 'offered again at its due time');
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'claimed');
  });

  it('wakes for webhook deliveries: due at once, then at the retry time the failure set', async () => {
    let answer = 503;
    const calls: string[] = [];
    const endpoint = (async (url: string) => {
      calls.push(url);
      return new Response(null, { status: answer });
    }) as unknown as typeof fetch;
    const h = makeHarness({ housekeeping: { fetch: endpoint } });
    assert.ok(h.core.webhooks.create('https://hooks.example/a', ['cancelled']).ok);
    const job = imageJob(h, 'cancelled');
    h.core.jobs.cancel(job.id);
    assert.equal(h.core.housekeeping.nextWakeAt(), h.clock.now(), 'a new delivery is due now');
    const retryAt = await h.core.housekeeping.runDue();
    assert.equal(calls.length, 1);
    const pending = h.ports.sql.get<{ next_at: number }>(`SELECT next_at FROM webhook_deliveries WHERE status = 'pending'`);
    assert.equal(retryAt, pending?.next_at, 'the answer is the retry time of the failed delivery');
    answer = 204;
    h.clock.advance((retryAt as number) - h.clock.now());
    assert.equal(await h.core.housekeeping.runDue(), undefined);
    assert.equal(calls.length, 2);
    assert.equal(h.ports.sql.get<{ status: string }>('SELECT status FROM webhook_deliveries')?.status, 'delivered');
  });

  it('prunes worker logs every 10 minutes while there are any, remembering the last run in SQL', async () => {
    const h = makeHarness({ logLinesPerWorker: 2, staleSessionMs: 3600_000 });
    const w = connectWorker(h);
    const batch = (n: number) => ({ type: 'logBatch', entries: Array.from({ length: n }, (_, i) => ({ ts: new Date(h.clock.now()).toISOString(), level: 'info', category: 'x', message: `line ${i}` })) });
    const lines = () => h.ports.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM worker_logs')?.n;
    send(h, w.connId, batch(5));
    assert.equal(h.core.housekeeping.nextWakeAt(), h.clock.now(), 'never pruned: due now');
    const next = await h.core.housekeeping.runDue();
    assert.equal(lines(), 2);
    assert.equal(next, h.clock.now() + 600_000);
    send(h, w.connId, batch(4));
    h.clock.advance(599_999);
    await h.core.housekeeping.runDue();
    assert.equal(lines(), 6, 'not before ten minutes');
    h.clock.advance(1);
    await h.core.housekeeping.runDue();
    assert.equal(lines(), 2);
    // A host that lost its memory (a new core over the same SQL) keeps the rhythm: not due again at once.
    const pruned = h.clock.now();
    const fresh = createStudioCore(h.ports, silentLogger, { logLinesPerWorker: 2 });
    assert.equal(fresh.housekeeping.nextWakeAt(), pruned + 600_000);
  });

  it('runs retention when configured, handing the files to delete to the host', async () => {
    const removed: string[][] = [];
    const h = makeHarness({
      staleSessionMs: 10 * 24 * 3600_000,
      leaseMs: 10 * 24 * 3600_000,
      housekeeping: { retention: { maxAgeMs: 24 * 3600_000, everyMs: 3600_000, removeFiles: (files) => void removed.push([...files]) } },
    });
    const w = connectWorker(h);
    const job = imageJob(h, 'old result');
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    assert.ok(h.core.dispatcher.completeFile(w.workerId, job.id, 1, { fileName: 'ab/old.png', ext: 'png', bytes: 10 }).ok);
    const first = await h.core.housekeeping.runDue();
    assert.deepEqual(removed, [], 'nothing old enough yet');
    assert.equal(first, h.clock.now() + 3600_000);
    h.clock.advance(24 * 3600_000 + 1);
    await h.core.housekeeping.runDue();
    assert.deepEqual(removed, [['ab/old.png']], 'older than a day, at the hourly run');
    assert.equal(h.core.stores.jobs.get(job.id)?.result_type, 'expired');
  });
});
