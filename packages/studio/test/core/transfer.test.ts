// Moving a studio: export (models, workers with token hashes, unfinished jobs) → JSON → import into a
// fresh core; approved workers keep working there, held jobs come back queued, twice is once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelEntry } from '@studio-worker/protocol';
import { exportStudio, importStudio, type StudioExport } from '../../src/core/index.ts';
import { capabilities, connectWorker, imageJob, llmJob, makeHarness, send, type Harness } from './harness.ts';

/** A studio with a bit of everything: a custom model, workers (one deleted), jobs in every state. */
function busyStudio() {
  const h = makeHarness({ retryBackoffMs: 60_000 });
  assert.ok(h.core.models.create(ModelEntry.parse({ id: 'house-llm', kind: 'llm', displayName: 'House', source: { engine: 'synthetic', files: [] }, pool: 'gpu' })).ok);
  const w = connectWorker(h);
  const gone = h.core.registration.createApprovedWorker('gone', 'old-box');
  h.core.registration.createApprovedWorker('never-connected', 'box-2');
  h.ports.sql.run('UPDATE workers SET deleted_at = ? WHERE id = ?', h.clock.now(), gone.workerId);
  const running = llmJob(h, 'running');
  send(h, w.connId, { type: 'accept', jobId: running.id, attempt: 1 });
  // Backed off after one failure: queued with not_before in the future.
  const backedOff = imageJob(h, 'backed off');
  const done = llmJob(h, 'done'); // waits: w holds one job at a time
  send(h, w.connId, { type: 'fail', jobId: running.id, attempt: 1, error: 'oom', retryable: true });
  // w took `backedOff` (queued first) after the failure; run it to the end.
  const offered = h.channel.of(w.connId, 'offer').at(-1)?.claim;
  assert.equal(offered?.jobId, backedOff.id);
  send(h, w.connId, { type: 'accept', jobId: backedOff.id, attempt: 1 });
  send(h, w.connId, { type: 'completeJson', jobId: backedOff.id, attempt: 1, result: 1 });
  // Now `done` is offered (claimed) and `running` (attempt 2) backs off.
  assert.equal(h.core.stores.jobs.get(done.id)?.status, 'claimed');
  const queued = llmJob(h, 'queued, never offered');
  return { h, w, running, backedOff, done, queued };
}

function roundTrip(doc: StudioExport): unknown {
  return JSON.parse(JSON.stringify(doc));
}

describe('export and import', () => {
  it('carries models, workers and unfinished jobs to a fresh core, where the old worker token works', () => {
    const { h, w, running, backedOff, done, queued } = busyStudio();
    const doc = exportStudio(h.ports.sql, h.clock.now());
    assert.deepEqual(doc.jobs.map((j) => [j.id, j.status]), [
      [running.id, 'queued'],
      [done.id, 'claimed'],
      [queued.id, 'queued'],
    ]);
    assert.equal(doc.workers.length, 2, 'the deleted worker stays behind');
    assert.ok(doc.models.some((m) => m.id === 'house-llm' && m.pool === 'gpu'));
    assert.ok(!doc.jobs.some((j) => j.id === backedOff.id), 'finished jobs stay behind');

    const target = makeHarness();
    const imported = importStudio(target.core, roundTrip(doc));
    assert.ok(imported.ok, imported.ok ? '' : imported.error.message);
    assert.deepEqual(imported.value.jobs, { added: 3, existing: 0, otherPool: 0 });
    assert.deepEqual(imported.value.workers, { added: 2, existing: 0, otherPool: 0 });
    assert.equal(imported.value.models.added, 1, 'the custom model; the seeds are the same on both');
    assert.equal(target.core.models.get('house-llm')?.displayName, 'House');
    assert.equal(target.core.models.get('house-llm')?.pool, 'gpu');

    const store = target.core.stores.jobs;
    // The claimed job is queued again with its next attempt; the queued ones keep theirs and their backoff.
    assert.deepEqual([store.get(done.id)?.status, store.get(done.id)?.attempt, store.get(done.id)?.worker_id], ['queued', 2, null]);
    assert.deepEqual([store.get(running.id)?.status, store.get(running.id)?.attempt, store.get(running.id)?.failures], ['queued', 2, 1]);
    assert.equal(store.get(running.id)?.not_before, h.core.stores.jobs.get(running.id)?.not_before);
    assert.equal(store.get(queued.id)?.attempt, 1);

    // The approved worker connects to the new studio with the token it has, and gets the jobs in order.
    const again = connectWorker(target, capabilities(), { workerId: w.workerId, authToken: w.authToken });
    assert.equal(target.channel.of(again.connId, 'welcome').length, 1);
    assert.deepEqual(target.channel.of(again.connId, 'offer').map((o) => [o.claim.jobId, o.claim.attempt]), [[done.id, 2]]);
    // A late result of the old claim (attempt 1) is refused as stale.
    send(target, again.connId, { type: 'completeJson', jobId: done.id, attempt: 1, result: 'late' });
    assert.equal(target.channel.of(again.connId, 'error').at(-1)?.code, 'stale_attempt');
    // New jobs there take the next sequence numbers (no clash with the imported ones).
    const fresh = llmJob(target, 'made after the import');
    assert.ok((store.get(fresh.id)?.seq ?? 0) > (store.get(queued.id)?.seq ?? Infinity));
  });

  it('is idempotent: importing twice adds nothing the second time', () => {
    const { h } = busyStudio();
    const doc = roundTrip(exportStudio(h.ports.sql, h.clock.now()));
    const target = makeHarness();
    assert.ok(importStudio(target.core, doc).ok);
    const count = () => target.ports.sql.get<{ j: number; w: number; m: number }>('SELECT (SELECT COUNT(*) FROM jobs) AS j, (SELECT COUNT(*) FROM workers) AS w, (SELECT COUNT(*) FROM models) AS m');
    const before = count();
    const second = importStudio(target.core, doc);
    assert.ok(second.ok);
    assert.deepEqual(second.value, {
      models: { added: 0, updated: 0, unchanged: before?.m ?? -1 },
      workers: { added: 0, existing: 2, otherPool: 0 },
      jobs: { added: 0, existing: 3, otherPool: 0 },
    });
    assert.deepEqual(count(), before);
  });

  it('a pooled core takes only the workers and jobs of its pool (models go everywhere)', () => {
    const { h } = busyStudio();
    const doc = exportStudio(h.ports.sql, h.clock.now());
    const gpu = makeHarness({ pool: 'gpu' });
    const report = importStudio(gpu.core, roundTrip(doc));
    assert.ok(report.ok);
    assert.deepEqual(report.value.jobs, { added: 0, existing: 0, otherPool: 3 }, 'ids without a dot belong to default');
    assert.equal(report.value.workers.otherPool, 2);
    assert.equal(gpu.core.models.get('house-llm')?.pool, 'gpu');
    const def = makeHarness({ pool: 'default' });
    const intoDefault = importStudio(def.core, roundTrip(doc));
    assert.ok(intoDefault.ok);
    assert.equal(intoDefault.value.jobs.added, 3);
  });

  it('refuses what it cannot read with a clear error, and writes nothing', () => {
    const { h } = busyStudio();
    const doc = roundTrip(exportStudio(h.ports.sql, h.clock.now())) as StudioExport;
    const target = makeHarness();
    const jobsBefore = target.core.jobs.counts();
    const cases: Array<[unknown, string, RegExp]> = [
      [{ hello: 1 }, 'invalid_export', /not a studio export/],
      [{ ...doc, version: 2 }, 'unsupported_export_version', /version 2; this studio reads version 1/],
      [{ ...doc, jobs: [{ ...doc.jobs[0], task: { kind: 'llm' } }] }, 'invalid_export', /jobs\.0\.task/],
      [{ ...doc, workers: [{ ...doc.workers[0], tokenHash: 'not-a-hash' }] }, 'invalid_export', /workers\.0\.tokenHash: a lowercase hex SHA-256/],
      [
        { ...doc, models: [{ id: 'bad', kind: 'llm', source: { engine: 'synthetic', files: [{ role: 'model', url: 'http://example.com/x.gguf', filename: 'x.gguf' }] } }] },
        'invalid_model_url',
        /models\[0\] \(bad\)\.source\.files\[0\]\.url: uses plain http/,
      ],
    ];
    for (const [body, code, message] of cases) {
      const result = importStudio(target.core, body);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.error.code, code);
      assert.match(!result.ok ? result.error.message : '', message);
    }
    assert.deepEqual(target.core.jobs.counts(), jobsBefore);
    assert.equal(target.core.models.get('bad'), undefined);
  });
});
