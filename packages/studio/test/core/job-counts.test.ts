import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { createStudioCore, type StudioCore } from '../../src/core/index.ts';
import { prng as random } from '../../../../test/fuzz/frame-fuzzer.ts';
import { capabilities, connectWorker, makeHarness, type Harness, llmSubmission } from './harness.ts';

const llm = (content: string) => llmSubmission(content, 4);

function truth(h: Harness): Record<string, number> {
  const out: Record<string, number> = {};
  for (const row of h.sql.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status')) out[row.status] = row.n;
  return out;
}

describe('job counts kept in memory, and job events', () => {
  for (const seed of [1, 2, 3]) {
    it(`equal a COUNT of the table (one event per ending, an attempt record per result) after every step of a random walk (seed ${seed}): creates, offers, accepts, results, failures, rejects, cancels, retries, lost leases, disconnects, rollbacks, restarts`, () => {
      const rnd = random(seed);
      const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(rnd() * list.length)];
      const leaseMs = 60_000;
      const h = makeHarness({ leaseMs, cooldownAfterFailures: 1000 });
      let core: StudioCore = h.core;
      const workers = [connectWorker(h), connectWorker(h), connectWorker(h)];
      const online = new Set(workers.map((w) => w.connId));
      const ids: string[] = [];
      const did = new Map<string, number>();
      /** The claims a worker was offered and has not answered for good, from the frames it got. */
      const offersOf = (connId: string) =>
        (h.channel.frames.get(connId) ?? []).flatMap((f) => (f.type === 'offer' ? [{ jobId: f.claim.jobId, attempt: f.claim.attempt }] : []));
      const frame = (connId: string, body: Record<string, unknown>) => core.dispatcher.handleText(connId, JSON.stringify(body));
      const statuses = () => new Map(h.sql.all<{ id: string; status: string }>('SELECT id, status FROM jobs').map((r) => [r.id, r.status]));
      let lastEvent = 0;
      for (let step = 0; step < 400; step++) {
        const before = statuses();
        let r = rnd();
        // Answers go to a worker that has an offer to answer; with none anywhere, create instead.
        const answering = workers.filter((x) => online.has(x.connId) && offersOf(x.connId).length > 0);
        let w = pick(workers) as (typeof workers)[number];
        if (r >= 0.2 && r < 0.6) {
          if (answering.length === 0) r = 0;
          else w = pick(answering) as (typeof workers)[number];
        }
        const offer = pick(offersOf(w.connId));
        let action: string;
        if (r < 0.2) {
          action = 'create';
          const made = core.jobs.createMany(Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, i) => llm(`s${step}-${i}`)));
          assert.ok(made.ok);
          ids.push(...made.value.map((j) => j.id));
        } else if (r < 0.32 && offer) {
          action = 'accept';
          frame(w.connId, { type: 'accept', jobId: offer.jobId, attempt: offer.attempt });
        } else if (r < 0.47 && offer) {
          action = 'completeJson';
          frame(w.connId, { type: 'completeJson', jobId: offer.jobId, attempt: offer.attempt, result: { ok: true } });
        } else if (r < 0.55 && offer) {
          action = 'fail';
          const retryable = rnd() < 0.5;
          frame(w.connId, { type: 'fail', jobId: offer.jobId, attempt: offer.attempt, error: 'no', retryable, code: retryable ? 'engine_error' : 'bad_input' });
        } else if (r < 0.6 && offer) {
          action = 'reject';
          frame(w.connId, { type: 'reject', jobId: offer.jobId, attempt: offer.attempt, reason: 'busy', code: 'busy' });
        } else if (r < 0.68 && ids.length > 0) {
          action = 'cancel';
          core.jobs.cancel(pick(ids) as string);
        } else if (r < 0.76 && ids.length > 0) {
          action = 'retry';
          core.jobs.retry(pick(ids) as string);
        } else if (r < 0.8) {
          action = 'leases run out';
          h.clock.advance(leaseMs + 1);
          core.dispatcher.sweepLeases();
        } else if (r < 0.86) {
          action = online.has(w.connId) ? 'disconnect' : 'reconnect';
          if (online.has(w.connId)) {
            core.dispatcher.connectionClosed(w.connId, 1006);
            online.delete(w.connId);
          } else {
            h.channel.take(w.connId);
            h.channel.closed.delete(w.connId);
            core.dispatcher.connectionOpened(w.connId, w.workerId);
            frame(w.connId, { type: 'hello', authToken: w.authToken, capabilities: capabilities() });
            online.add(w.connId);
          }
        } else if (r < 0.92 && ids.length > 0) {
          action = 'rollback';
          // A unit that changes a job's status and then fails: SQL undoes it, the tally must too.
          assert.throws(() =>
            core.ports.sql.transaction(() => {
              core.stores.jobs.cancel(pick(ids) as string, h.clock.now());
              core.stores.jobs.insert({ ...newJobLike(`rb${step}`, 10_000_000 + step, h.clock.now()) });
              throw new Error('the unit fails after its writes');
            }),
          );
        } else if (r < 0.95) {
          action = 'restart';
          // The host lost its memory: a new core over the same SQL; the workers connect again.
          core = createStudioCore(h.ports, silentLogger, { retryBackoffMs: 1000, leaseMs, cooldownAfterFailures: 1000 });
          h.core = core;
          for (const x of workers) {
            h.channel.take(x.connId);
            h.channel.closed.delete(x.connId);
            core.dispatcher.connectionOpened(x.connId, x.workerId);
            frame(x.connId, { type: 'hello', authToken: x.authToken, capabilities: capabilities() });
            online.add(x.connId);
          }
        } else {
          action = 'time passes';
          h.clock.advance(Math.floor(rnd() * 5_000));
          core.dispatcher.tick();
        }
        did.set(action, (did.get(action) ?? 0) + 1);
        // A socket the studio closed (a silent worker after time passed) is gone, as a host would report.
        for (const x of workers) {
          if (online.has(x.connId) && h.channel.closed.has(x.connId)) {
            core.dispatcher.connectionClosed(x.connId, h.channel.closed.get(x.connId)?.code ?? 1000);
            online.delete(x.connId);
          }
        }
        assert.deepEqual(core.jobs.counts(), truth(h), `seed ${seed}, step ${step} (${action})`);
        // One job event for each job that reached an ending in this step, and no other (the trigger).
        const ended = [...statuses()].filter(([id, status]) => ['done', 'failed', 'cancelled'].includes(status) && before.get(id) !== status).map(([id, status]) => `${id} ${status}`);
        const events = core.stores.events.eventsAfter(lastEvent, 1000);
        lastEvent = events.at(-1)?.id ?? lastEvent;
        assert.deepEqual(events.map((e) => `${e.job_id} ${e.status}`).sort(), ended.sort(), `seed ${seed}, step ${step} (${action}): job events`);
        // Every done job has the attempt record of the claim that delivered it (written with the result).
        const unrecorded = h.sql.all<{ id: string }>(
          `SELECT j.id FROM jobs j LEFT JOIN job_attempts a ON a.job_id = j.id AND a.attempt = j.attempt AND a.outcome = 'done'
           AND a.worker_id = j.last_worker_id AND a.ended_at = j.completed_at AND a.offered_at <= a.ended_at
           WHERE j.status = 'done' AND a.job_id IS NULL`,
        );
        assert.deepEqual(unrecorded, [], `seed ${seed}, step ${step} (${action}): done jobs without their attempt record`);
      }
      // The walk went through every kind of step, and ended with jobs in several statuses.
      for (const action of ['create', 'accept', 'completeJson', 'fail', 'reject', 'cancel', 'retry', 'leases run out', 'disconnect', 'rollback', 'restart']) {
        assert.ok((did.get(action) ?? 0) > 0, `seed ${seed}: no ${action} step (${JSON.stringify([...did])})`);
      }
      assert.ok(Object.keys(truth(h)).length >= 3, JSON.stringify(truth(h)));
    });
  }
});

function newJobLike(id: string, seq: number, now: number) {
  return {
    id,
    seq,
    model: 'synthetic-llm',
    kind: 'llm' as const,
    engine: 'synthetic',
    task: '{}',
    modelSource: '{}',
    vramGbEstimate: 0,
    gameId: '',
    assetName: '',
    prompt: '',
    priority: 0,
    maxAttempts: 3,
    now,
  };
}
