// Pools in the core: a core that runs one pool makes ids in it and refuses (with the pool) jobs that
// belong to another; a core without a pool (the embedded host) behaves as before.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelEntry, poolOf } from '@studio-worker/protocol';
import { silentLogger } from '@studio-worker/log';
import { createStudioCore } from '../../src/core/index.ts';
import { capabilities, connectWorker, makeHarness, send, type Harness } from './harness.ts';

const LLM_TASK = { kind: 'llm' as const, messages: [{ role: 'user' as const, content: 'hi' }], maxTokens: 16, temperature: 0.7 };

function llmRequest(over: { model?: string; pool?: string } = {}) {
  return { model: 'synthetic-llm', task: LLM_TASK, gameId: '', assetName: '', priority: 0, ...over };
}

function gpuModel(h: Harness): void {
  const created = h.core.models.create(ModelEntry.parse({ id: 'gpu-llm', kind: 'llm', source: { engine: 'synthetic', files: [] }, pool: 'gpu' }));
  assert.ok(created.ok, created.ok ? '' : created.error.message);
  assert.equal(created.value.pool, 'gpu');
}

describe('pools in the core', () => {
  it('a core for pool "gpu" makes gpu.-prefixed job, worker and registration ids, and runs jobs on them', () => {
    const h = makeHarness({ pool: 'gpu' });
    gpuModel(h);
    const request = h.core.registration.request(
      { installId: 'install-0001', registrationSecretHash: 'a'.repeat(64), capabilities: capabilities(), userAgent: 'studio-worker/1' },
      '127.0.0.1',
      'ua',
    );
    assert.ok(request.ok);
    assert.match(request.value.requestId, /^gpu\.rr-[0-9a-f]{24}$/);
    const approved = h.core.registration.approve(request.value.requestId, undefined);
    assert.ok(approved.ok);
    assert.match(approved.value.workerId, /^gpu\.w-[0-9a-f]{12}$/);
    const w = connectWorker(h);
    assert.equal(poolOf(w.workerId), 'gpu');
    const job = h.core.jobs.create(llmRequest({ model: 'gpu-llm' }));
    assert.ok(job.ok, job.ok ? '' : job.error.message);
    assert.match(job.value.id, /^gpu\.job-[0-9a-f]{16}$/);
    assert.equal(h.channel.of(w.connId, 'offer')[0]?.claim.jobId, job.value.id);
    send(h, w.connId, { type: 'accept', jobId: job.value.id, attempt: 1 });
    send(h, w.connId, { type: 'completeJson', jobId: job.value.id, attempt: 1, result: { text: 'ok' } });
    assert.equal(h.core.stores.jobs.get(job.value.id)?.status, 'done');
  });

  it('refuses a job of another pool with wrong_pool and that pool: from the body, else from the model', () => {
    const h = makeHarness({ pool: 'gpu' });
    gpuModel(h);
    const byModel = h.core.jobs.create(llmRequest());
    assert.equal(byModel.ok, false);
    assert.deepEqual(!byModel.ok && [byModel.error.code, byModel.error.pool, byModel.error.status], ['wrong_pool', 'default', 409]);
    assert.match(!byModel.ok ? byModel.error.message : '', /model "synthetic-llm"/);
    const byBody = h.core.jobs.create(llmRequest({ model: 'gpu-llm', pool: 'cpu' }));
    assert.deepEqual(!byBody.ok && [byBody.error.code, byBody.error.pool], ['wrong_pool', 'cpu']);
    assert.equal(h.core.jobs.create(llmRequest({ pool: 'gpu' })).ok, true, "the body's pool wins over the model's");
    // A batch is all or nothing: one entry of another pool refuses it, naming the entry.
    const batch = h.core.jobs.createMany([llmRequest({ model: 'gpu-llm' }), llmRequest()]);
    assert.deepEqual(!batch.ok && [batch.error.code, batch.error.pool], ['wrong_pool', 'default']);
    assert.match(!batch.ok ? batch.error.message : '', /^jobs\[1\]: /);
    assert.equal(h.core.jobs.counts().queued, 1);
  });

  it('the default pool keeps ids without a prefix, so an original worker registered before pools still works', () => {
    const h = makeHarness();
    const old = h.core.registration.createApprovedWorker('old', 'box'); // made before pools existed
    assert.doesNotMatch(old.workerId, /\./);
    // The same database, now run as the pool "default" of a pooled studio.
    h.core = createStudioCore(h.ports, silentLogger, { pool: 'default' });
    gpuModel(h);
    const original = capabilities({ protocolFeatures: undefined }); // the original announces no features
    const w = connectWorker(h, original, old);
    assert.equal(h.channel.of(w.connId, 'welcome').length, 1);
    const job = h.core.jobs.create(llmRequest());
    assert.ok(job.ok);
    assert.match(job.value.id, /^job-[0-9a-f]{16}$/, 'no prefix in the default pool');
    assert.equal(poolOf(job.value.id), 'default');
    const [offer] = h.channel.of(w.connId, 'offer');
    assert.equal(offer?.claim.jobId, job.value.id);
    send(h, w.connId, { type: 'completeJson', jobId: job.value.id, result: { text: 'ok' } });
    assert.equal(h.core.stores.jobs.get(job.value.id)?.status, 'done');
    const elsewhere = h.core.jobs.create(llmRequest({ model: 'gpu-llm' }));
    assert.deepEqual(!elsewhere.ok && [elsewhere.error.code, elsewhere.error.pool], ['wrong_pool', 'gpu']);
  });

  it('without a pool (the embedded host) nothing changes: no prefix, and a pool field or pooled model is accepted', () => {
    const h = makeHarness();
    gpuModel(h);
    const job = h.core.jobs.create(llmRequest({ model: 'gpu-llm', pool: 'cpu' }));
    assert.ok(job.ok);
    assert.match(job.value.id, /^job-/);
    assert.equal(h.core.jobs.poolOf({ pool: undefined }, h.core.models.get('gpu-llm')), 'gpu');
    assert.equal(h.core.jobs.poolOf({ pool: 'cpu' }, h.core.models.get('gpu-llm')), 'cpu');
    assert.equal(h.core.jobs.poolOf({}, h.core.models.get('synthetic-llm')), 'default');
  });

  it('keeps, changes and clears a model\'s pool, and refuses a bad pool name on the core', () => {
    const h = makeHarness();
    gpuModel(h);
    assert.equal(h.core.models.update('gpu-llm', { pool: 'edge' }).ok && h.core.models.get('gpu-llm')?.pool, 'edge');
    assert.equal(h.core.models.update('gpu-llm', { displayName: 'x' }).ok && h.core.models.get('gpu-llm')?.pool, 'edge', 'a patch without pool keeps it');
    assert.equal(h.core.models.update('gpu-llm', { pool: null as unknown as undefined }).ok && h.core.models.get('gpu-llm')?.pool, undefined);
    const bad = h.core.models.update('gpu-llm', { pool: 'Not A Pool' });
    assert.equal(!bad.ok && bad.error.code, 'invalid_model');
    assert.throws(() => makeHarness({ pool: 'GPU' }), /pool "GPU" is not a pool name/);
  });
});
