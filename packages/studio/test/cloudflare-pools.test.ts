// The Worker's routing (src/cloudflare/pools.ts): every request reaches its pool's object from the
// request alone. Pure functions, so they run under Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configuredPools, poolFor, routeOf } from '../src/cloudflare/pools.ts';

test('poolFor reads the pool from the id; an id without a pool (an original worker) is in default', () => {
  assert.equal(poolFor('gpu.w-1a2b3c'), 'gpu');
  assert.equal(poolFor('gpu-2.job-00000000011a2b3c'), 'gpu-2');
  assert.equal(poolFor('w-1a2b3c'), 'default');
  assert.equal(poolFor('job-0000000001abcdef'), 'default');
  assert.equal(poolFor('GPU.w-1'), 'default', 'upper case is not a pool name: no object made it, default answers 404');
  assert.equal(poolFor('.w-1'), 'default');
  assert.equal(poolFor(`${'a'.repeat(33)}.w-1`), 'default', 'pool names are at most 32 characters');
});

test('routeOf: ids route to their pool, lists fan out, model writes go everywhere, submissions may be redirected', () => {
  const api = (p: string) => `/graphics/api${p}`;
  assert.deepEqual(routeOf('GET', api('/workers/gpu.w-1/connect'), undefined), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('POST', api('/workers/gpu.w-1/jobs/gpu.job-1/complete'), undefined), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('POST', api('/workers/pending/gpu.rr-1/approve'), undefined), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('GET', api('/workers/register-requests/gpu.rr-1'), undefined), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('POST', api('/workers/register-request'), undefined), { kind: 'one', pool: 'default' });
  assert.deepEqual(routeOf('POST', api('/workers/register-request'), 'gpu'), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('GET', api('/jobs/gpu.job-1/result'), undefined), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('GET', api('/jobs/job-1'), undefined), { kind: 'one', pool: 'default' });
  assert.deepEqual(routeOf('GET', api('/jobs'), undefined), { kind: 'fanout', list: 'jobs' });
  assert.deepEqual(routeOf('GET', api('/jobs'), 'gpu'), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('GET', api('/workers'), undefined), { kind: 'fanout', list: 'workers' });
  assert.deepEqual(routeOf('GET', api('/workers/pending'), undefined), { kind: 'fanout', list: 'requests' });
  assert.deepEqual(routeOf('POST', api('/jobs'), undefined), { kind: 'create', pool: undefined });
  assert.deepEqual(routeOf('POST', api('/jobs/batch'), 'gpu'), { kind: 'create', pool: 'gpu' });
  assert.deepEqual(routeOf('POST', api('/jobs/lookup'), undefined), { kind: 'lookup' });
  assert.deepEqual(routeOf('POST', api('/models'), undefined), { kind: 'every' });
  assert.deepEqual(routeOf('PATCH', api('/models/sd15'), undefined), { kind: 'every' });
  assert.deepEqual(routeOf('GET', api('/models'), undefined), { kind: 'one', pool: 'default' });
  assert.deepEqual(routeOf('POST', api('/admin/import'), undefined), { kind: 'every' });
  assert.deepEqual(routeOf('POST', api('/admin/import'), 'gpu'), { kind: 'one', pool: 'gpu' });
  assert.deepEqual(routeOf('GET', api('/health'), undefined), { kind: 'fanout', list: 'health' });
  assert.deepEqual(routeOf('POST', api('/workers'), undefined), { kind: 'one', pool: 'default' });
});

test('configuredPools: STUDIO_POOLS, default always included, bad names dropped', () => {
  assert.deepEqual(configuredPools(undefined), ['default']);
  assert.deepEqual(configuredPools('gpu, cpu,,BAD'), ['default', 'gpu', 'cpu']);
});
