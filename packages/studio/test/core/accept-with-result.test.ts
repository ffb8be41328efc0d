import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectWorker, llmJob, makeHarness, type Harness } from './harness.ts';

/** The frames of one read of the worker's socket, as the Node host hands them over. */
function read(h: Harness, connId: string, ...frames: Array<Record<string, unknown>>): void {
  h.core.dispatcher.handleTexts(connId, frames.map((f) => JSON.stringify(f)));
}

/** The UPDATE statements on jobs that run inside `fn`. */
function jobUpdates(h: Harness, fn: () => void): string[] {
  const seen: string[] = [];
  const { run } = h.sql;
  h.sql.run = ((text: string, ...params: never[]) => {
    if (/^\s*UPDATE jobs\b/.test(text)) seen.push(text.replace(/\s+/g, ' ').slice(0, 60));
    return run.call(h.sql, text, ...params);
  }) as typeof run;
  try {
    fn();
  } finally {
    h.sql.run = run;
  }
  return seen;
}

describe('an accept and its result in one read', () => {
  it('are stored by one UPDATE, with the accept time, and end as frame by frame would', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    const offeredAt = h.clock.now();
    h.clock.advance(40);
    const acceptedAt = h.clock.now();
    const updates = jobUpdates(h, () =>
      read(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 }, { type: 'completeJson', jobId: job.id, attempt: 1, result: { text: 'ok' } }),
    );
    assert.equal(updates.length, 1, `one statement: ${updates.join(' ; ')}`);
    const done = h.core.jobs.get(job.id);
    assert.ok(done.ok);
    assert.equal(done.value.status, 'done');
    const [attempt] = done.value.attempts ?? [];
    assert.equal(attempt?.outcome, 'done');
    assert.equal(attempt?.offeredAt, new Date(offeredAt).toISOString());
    assert.equal(attempt?.acceptedAt, new Date(acceptedAt).toISOString(), 'the attempt record keeps the accept');
    assert.deepEqual(h.channel.of(w.connId, 'completeAck'), [{ type: 'completeAck', jobId: job.id, attempt: 1 }]);
    assert.deepEqual(h.channel.of(w.connId, 'error'), []);
  });

  it('frame by frame, the accept is its own UPDATE (the comparison the first test relies on)', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    const updates = jobUpdates(h, () => {
      read(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
      read(h, w.connId, { type: 'completeJson', jobId: job.id, attempt: 1, result: { text: 'ok' } });
    });
    assert.equal(updates.length, 2, updates.join(' ; '));
    const done = h.core.jobs.get(job.id);
    assert.ok(done.ok);
    assert.ok(done.value.attempts?.[0]?.acceptedAt);
  });

  it('an accept followed by anything else in the read is stored before that frame is handled', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    const other = llmJob(h, 'second'); // queued: the worker has one slot
    read(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 }, { type: 'heartbeat', inFlight: [{ jobId: job.id, attempt: 1 }], currentJobId: job.id });
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running');
    // A result for another job right after an accept: the accept is stored on its own.
    read(h, w.connId, { type: 'completeJson', jobId: job.id, attempt: 1, result: {} });
    const [offer] = h.channel.of(w.connId, 'offer').slice(-1);
    assert.equal(offer?.claim.jobId, other.id);
    read(h, w.connId, { type: 'accept', jobId: other.id, attempt: 1 }, { type: 'completeJson', jobId: job.id, attempt: 1, result: {} });
    assert.equal(h.core.stores.jobs.get(other.id)?.status, 'running');
    assert.equal(h.channel.of(w.connId, 'error').at(-1)?.code, 'stale_attempt', 'the second result for the first job is refused');
  });

  it('an accept at the end of a read, or before a malformed frame, is stored; a result for another attempt does not take it', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    read(h, w.connId, { type: 'heartbeat' }, { type: 'accept', jobId: job.id, attempt: 1 });
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'running');

    const h2 = makeHarness();
    const w2 = connectWorker(h2);
    const job2 = llmJob(h2);
    h2.core.dispatcher.handleTexts(w2.connId, [JSON.stringify({ type: 'accept', jobId: job2.id, attempt: 1 }), '{"type":"completeJson"']);
    assert.equal(h2.core.stores.jobs.get(job2.id)?.status, 'running');
    assert.equal(h2.channel.of(w2.connId, 'error').at(-1)?.code, 'protocol_violation');

    const h3 = makeHarness();
    const w3 = connectWorker(h3);
    const job3 = llmJob(h3);
    read(h3, w3.connId, { type: 'accept', jobId: job3.id, attempt: 1 }, { type: 'completeJson', jobId: job3.id, attempt: 2, result: {} });
    assert.equal(h3.core.stores.jobs.get(job3.id)?.status, 'running', 'the accept stands');
    assert.equal(h3.channel.of(w3.connId, 'error').at(-1)?.code, 'stale_attempt', 'the result for attempt 2 is refused');
  });

  it('an accept of a cancelled job in the same read as its result: the worker is told to stop, as frame by frame', () => {
    const h = makeHarness();
    const w = connectWorker(h);
    const job = llmJob(h);
    assert.ok(h.core.jobs.cancel(job.id).ok);
    read(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 }, { type: 'completeJson', jobId: job.id, attempt: 1, result: {} });
    assert.equal(h.core.stores.jobs.get(job.id)?.status, 'cancelled');
    assert.ok(h.channel.of(w.connId, 'cancel').some((f) => f.jobId === job.id));
  });
});
