import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreateJobRequest, DEFAULT_POOL, inPool, ModelEntry, POOL_NAME, poolId, poolOf } from '../src/index.ts';

describe('pools in ids', () => {
  it('reads the pool from the prefix; an id without a dot is in the default pool', () => {
    assert.equal(poolOf('gpu.w-1a2b3c'), 'gpu');
    assert.equal(poolOf('gpu-2.job-00000000010a1b2c'), 'gpu-2');
    assert.equal(poolOf('rr-0123456789ab'), DEFAULT_POOL);
    assert.equal(poolOf('w-1a2b3c'), 'default', "an original worker's id");
    assert.equal(poolOf('GPU.w-1'), undefined, 'not a pool name');
    assert.equal(poolOf('.w-1'), undefined);
    assert.equal(poolOf(`${'a'.repeat(33)}.w-1`), undefined, 'pool names have at most 32 characters');
    assert.equal(inPool('gpu', 'gpu.w-1'), true);
    assert.equal(inPool('default', 'w-1'), true);
    assert.equal(inPool('gpu', 'w-1'), false);
    assert.equal(inPool('default', 'gpu.w-1'), false);
  });

  it('makes ids in a pool: prefixed, except in the default pool', () => {
    assert.equal(poolId('gpu', 'job-1'), 'gpu.job-1');
    assert.equal(poolId(undefined, 'job-1'), 'job-1');
    assert.equal(poolId('default', 'job-1'), 'job-1');
    assert.equal(poolOf(poolId('edge-7', 'w-9')), 'edge-7');
  });

  it('validates pool names on models and job requests', () => {
    assert.equal(POOL_NAME.safeParse('gpu-a100').success, true);
    assert.equal(POOL_NAME.safeParse('Gpu').success, false);
    assert.equal(POOL_NAME.safeParse('').success, false);
    assert.equal(POOL_NAME.safeParse('a.b').success, false);
    const model = { id: 'm', kind: 'llm', source: { engine: 'synthetic', files: [] } };
    assert.equal(ModelEntry.parse({ ...model, pool: 'gpu' }).pool, 'gpu');
    assert.equal(ModelEntry.parse({ ...model, pool: null }).pool, undefined, 'null reads as absent');
    const bad = ModelEntry.safeParse({ ...model, pool: 'GPU!' });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error?.issues[0]?.path, ['pool']);
    const job = { model: 'm', task: { kind: 'llm', messages: [{ role: 'user', content: 'hi' }] } };
    assert.equal(CreateJobRequest.parse({ ...job, pool: 'cpu' }).pool, 'cpu');
    assert.equal(CreateJobRequest.safeParse({ ...job, pool: 'x'.repeat(40) }).success, false);
  });
});
