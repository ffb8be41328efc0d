// Sharding by pool (issue 12 item 3) under workerd: each pool is its own Durable Object and the
// Worker routes from the ids alone. A worker created in pool `gpu` gets a `gpu.`-prefixed id and
// runs the jobs of that pool; a plain worker (no pool anywhere, as an original worker) lands in
// `default`. A job reaches its pool from its `pool` field, from `?pool=`, or from its model's
// registry entry (the default object refuses it as wrong_pool and the Worker forwards it, one hop);
// lists without `?pool=` fan out over STUDIO_POOLS.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { JobView, WorkerView } from '@studio-worker/protocol';
import { benchCapabilities } from '../../../bench/sim-worker.ts';
import { startApprovedWorkers, startStudioProcess, startWorkerProcess, writeWorkerConfig, type Proc, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
let studio: StudioProc;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-pools-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare', env: { STUDIO_POOLS: 'default,gpu' } });
  cleanup.push(() => studio.stop());
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

async function doneJob(id: string): Promise<JobView> {
  return waitFor(`job ${id} to be done`, async () => {
    const view = await studio.api.job(id);
    return view.status === 'done' ? view : undefined;
  });
}

const llm = (content: string) => ({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content }] } });

it('workers and jobs live in their pool; jobs find it by field, ?pool= or model; lists span pools', { timeout: 120_000 }, async () => {
  const [plain] = (await startApprovedWorkers(studio, dir, ['plain'])) as [Proc];
  cleanup.push(() => plain.stop());
  const gpuCreds = await studio.api.json<{ workerId: string; authToken: string }>('POST', '/workers?pool=gpu', { label: 'gpu-box' });
  assert.match(gpuCreds.workerId, /^gpu\.w-/);
  const config = join(dir, 'gpu', 'config.toml');
  await writeWorkerConfig(config, { apiBaseUrl: `${studio.url}/`, ...gpuCreds });
  const gpu = startWorkerProcess(config, { name: 'gpu' });
  cleanup.push(() => gpu.stop());

  // GET /workers without ?pool= fans out: both pools' workers, both online.
  const workers = await waitFor('both workers online across pools', async () => {
    const list = await studio.api.workers();
    return list.filter((w) => w.state === 'online').length === 2 ? list : undefined;
  });
  const plainId = (workers.find((w) => !w.id.includes('.')) as WorkerView).id;
  assert.ok(workers.some((w) => w.id === gpuCreds.workerId));

  const [byField] = await studio.api.createJobs([{ ...llm('by field'), pool: 'gpu' }]);
  assert.match(byField?.id ?? '', /^gpu\.job-/);
  assert.equal((await doneJob(byField?.id as string)).lastWorkerId, gpuCreds.workerId);

  const byQuery = await studio.api.json<JobView>('POST', '/jobs?pool=gpu', llm('by query'));
  assert.match(byQuery.id, /^gpu\.job-/);
  assert.equal((await doneJob(byQuery.id)).lastWorkerId, gpuCreds.workerId);

  const [plainJob] = await studio.api.createJobs([llm('no pool')]);
  assert.doesNotMatch(plainJob?.id ?? '.', /\./, 'a job with no pool anywhere stays in default, unprefixed');
  assert.equal((await doneJob(plainJob?.id as string)).lastWorkerId, plainId);

  // A model registry write reaches every pool; a job of that model is redirected to its pool.
  await studio.api.json('PATCH', '/models/synthetic-image', { pool: 'gpu' });
  const [byModel] = await studio.api.createJobs([{ model: 'synthetic-image', task: { kind: 'image', prompt: 'routed by model', width: 64, height: 64, ext: 'png' } }]);
  assert.match(byModel?.id ?? '', /^gpu\.job-/);
  assert.equal((await doneJob(byModel?.id as string)).lastWorkerId, gpuCreds.workerId);
  assert.equal((await studio.api.result(byModel?.id as string)).type, 'image/png');

  // Lists: without ?pool= every pool's jobs; with it, that pool's only.
  const everywhere = await studio.api.json<{ jobs: JobView[]; counts: Record<string, number> }>('GET', '/jobs');
  const ids = everywhere.jobs.map((j) => j.id);
  for (const job of [byField, byQuery, plainJob, byModel]) assert.ok(ids.includes(job?.id as string), `GET /jobs lists ${job?.id}`);
  assert.equal(everywhere.counts.done, 4);
  // A lookup spanning pools finds each job in its own pool.
  const looked = await studio.api.json<{ jobs: JobView[]; missing: string[] }>('POST', '/jobs/lookup', { ids: [byField?.id, plainJob?.id, 'gpu.job-nope'] });
  assert.deepEqual(looked.jobs.map((j) => j.id), [byField?.id, plainJob?.id]);
  assert.deepEqual(looked.missing, ['gpu.job-nope']);
  const inDefault = await studio.api.json<{ jobs: JobView[] }>('GET', '/jobs?pool=default');
  assert.deepEqual(inDefault.jobs.map((j) => j.id), [plainJob?.id]);
});

it('a registration request sent with x-studio-pool is made, listed, polled and approved in that pool', { timeout: 60_000 }, async () => {
  const secret = randomBytes(32).toString('hex');
  const res = await fetch(`${studio.url}/graphics/api/workers/register-request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-studio-pool': 'gpu' },
    body: JSON.stringify({ installId: 'install-pooled-1', registrationSecretHash: createHash('sha256').update(secret).digest('hex'), capabilities: benchCapabilities('pooled'), label: 'pooled box' }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const { requestId } = (await res.json()) as { requestId: string };
  assert.match(requestId, /^gpu\.rr-/);
  // GET /workers/pending without ?pool= fans out: the gpu pool's request is listed.
  assert.ok((await studio.api.pending()).some((r) => r.requestId === requestId));
  await studio.api.json('POST', `/workers/pending/${requestId}/approve`, {});
  const poll = await fetch(`${studio.url}/graphics/api/workers/register-requests/${requestId}`, { headers: { authorization: `Bearer ${secret}` } });
  const approved = (await poll.json()) as { status: string; workerId: string };
  assert.equal(approved.status, 'approved');
  assert.match(approved.workerId, /^gpu\.w-/);
});
