// Claims follow the worker's word (issue 9, Found 9): a heartbeat renews only the claims it lists,
// so one the worker forgot comes back after one lease; a refused stale-attempt frame never touches
// the current attempt; a socket that never says hello is closed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capabilities, connectWorker, llmJob, makeHarness, send, type Harness } from './harness.ts';

const LEASE = 10_000;

function heartbeat(h: Harness, connId: string, inFlight: Array<{ jobId: string; attempt?: number; state?: string }>): void {
  send(h, connId, { type: 'heartbeat', capabilities: capabilities(), inFlight: inFlight.map((j) => ({ state: 'running', ...j })) });
}

/** A worker that accepted one job (attempt 1), on a long session timeout so only leases act. */
function acceptedJob(caps = capabilities()) {
  const h = makeHarness({ leaseMs: LEASE, staleSessionMs: 600_000 });
  const w = connectWorker(h, caps);
  const job = llmJob(h);
  send(h, w.connId, { type: 'accept', jobId: job.id, attempt: caps.protocolFeatures?.includes('attempt') ? 1 : undefined });
  return { h, w, job, row: () => h.core.stores.jobs.get(job.id) };
}

/** `rounds` heartbeats 4 s apart (a lease is 10 s), each followed by the studio's tick. */
function beat(h: Harness, rounds: number, heartbeatFrame: () => void): void {
  for (let i = 0; i < rounds; i++) {
    h.clock.advance(4_000);
    heartbeatFrame();
    h.core.dispatcher.tick();
  }
}

describe('heartbeats renew only the claims they list', () => {
  it('a running job the heartbeats stop listing is handed back after one lease, and cancelled on the worker', () => {
    const { h, w, job, row } = acceptedJob();
    // The worker lost the job (an engine crash it did not report) but keeps heartbeating.
    beat(h, 3, () => heartbeat(h, w.connId, []));
    assert.notEqual(row()?.status, 'running', 'no zombie: the claim did not outlive its lease');
    assert.equal(row()?.attempt, 2);
    assert.equal(row()?.losses, 1);
    assert.ok(h.channel.of(w.connId, 'cancel').some((c) => c.jobId === job.id && c.attempt === 1), 'the worker is told to drop it');
  });

  it('a job the heartbeats keep listing keeps running for as long as they do', () => {
    const { h, w, job, row } = acceptedJob();
    beat(h, 10, () => heartbeat(h, w.connId, [{ jobId: job.id, attempt: 1 }]));
    assert.equal(row()?.status, 'running');
  });

  it('listing another attempt of the job does not renew this one', () => {
    const { h, w, job, row } = acceptedJob();
    beat(h, 3, () => heartbeat(h, w.connId, [{ jobId: job.id, attempt: 7 }]));
    assert.equal(row()?.attempt, 2);
  });

  it('an original worker (no inFlight list at all) keeps its claims alive with plain heartbeats', () => {
    const original = capabilities({ protocolFeatures: [] });
    const { h, w, job, row } = acceptedJob(original);
    beat(h, 5, () => send(h, w.connId, { type: 'heartbeat', capabilities: original, currentJobId: job.id }));
    assert.equal(row()?.status, 'running');
  });
});

describe('a refused stale frame leaves the current attempt alone', () => {
  /** The worker runs attempt 2 of `job` after attempt 1 was taken from it; another job waits. */
  function rerun(h: Harness) {
    const w = connectWorker(h);
    const job = llmJob(h, 'first');
    send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
    // The connection drops; the worker (resume) keeps the claim but does not come back in time.
    h.core.dispatcher.connectionClosed(w.connId, 1006);
    h.clock.advance(LEASE + 1);
    h.core.dispatcher.tick();
    assert.equal(h.core.stores.jobs.get(job.id)?.attempt, 2);
    const again = connectWorker(h, capabilities(), { workerId: w.workerId, authToken: w.authToken });
    const offer = h.channel.of(again.connId, 'offer').find((o) => o.claim.jobId === job.id);
    assert.equal(offer?.claim.attempt, 2);
    send(h, again.connId, { type: 'accept', jobId: job.id, attempt: 2 });
    const waiting = llmJob(h, 'second');
    assert.equal(h.core.stores.jobs.get(waiting.id)?.status, 'queued', 'one slot: the second job waits');
    return { conn: again.connId, job, waiting };
  }

  for (const stale of [
    { name: 'a late fail for attempt 1', frame: (jobId: string) => ({ type: 'fail', jobId, attempt: 1, error: 'engine crashed', retryable: true }) },
    { name: 'a late result for attempt 1', frame: (jobId: string) => ({ type: 'completeJson', jobId, attempt: 1, result: { text: 'late' } }) },
  ]) {
    it(`${stale.name} is refused and neither frees the slot nor ends attempt 2`, () => {
      const h = makeHarness({ leaseMs: LEASE, staleSessionMs: 600_000 });
      const { conn, job, waiting } = rerun(h);
      send(h, conn, stale.frame(job.id));
      assert.equal(h.channel.of(conn, 'error').at(-1)?.code, 'stale_attempt');
      assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running');
      assert.equal(h.core.stores.jobs.get(job.id)?.attempt, 2);
      // The next heartbeat is the studio's chance to offer an idle worker more: it is not idle.
      h.clock.advance(LEASE - 1);
      heartbeat(h, conn, [{ jobId: job.id, attempt: 2 }]);
      assert.equal(h.core.stores.jobs.get(waiting.id)?.status, 'queued', 'no second offer while attempt 2 runs');
      assert.ok(!h.channel.of(conn, 'offer').some((o) => o.claim.jobId === waiting.id));
      // Attempt 2 still counts as held: its heartbeat kept it, and its result is accepted.
      h.clock.advance(LEASE - 1);
      h.core.dispatcher.tick();
      assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running');
      send(h, conn, { type: 'completeJson', jobId: job.id, attempt: 2, result: { text: 'ok' } });
      assert.equal(h.core.stores.jobs.get(job.id)?.status, 'done');
      assert.ok(h.channel.of(conn, 'offer').some((o) => o.claim.jobId === waiting.id), 'the slot frees when attempt 2 ends');
    });
  }
});

describe('hello timeout', () => {
  it('a socket that never says hello is closed with 4002; one that did is not', () => {
    const h = makeHarness({ helloTimeoutMs: 5_000, staleSessionMs: 600_000 });
    const { workerId } = h.core.registration.createApprovedWorker('silent', 'box');
    h.core.dispatcher.connectionOpened('c-silent', workerId);
    const talker = connectWorker(h);
    h.clock.advance(4_000);
    h.core.dispatcher.tick();
    assert.equal(h.channel.closed.has('c-silent'), false, 'not before the timeout');
    h.clock.advance(1_001);
    h.core.dispatcher.tick();
    assert.equal(h.channel.closed.get('c-silent')?.code, 4002);
    assert.equal(h.channel.closed.has(talker.connId), false);
  });
});
