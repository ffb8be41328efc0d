// Done-when of issue 12 item 5: `npm run studio:cf` (the Cloudflare host under workerd, Miniflare 4,
// offline) plus a real worker daemon pointed at it completes a job. The worker registers itself,
// the operator approves it through the admin API, an image job runs, and its result is read back
// from R2 whole and with a Range request (206 and exactly those bytes).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startStudioProcess, startWorkerProcess, writeWorkerConfig, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
let studio: StudioProc;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-job-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare' });
  cleanup.push(() => studio.stop());
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

it('registration, approval, an image job, its result from R2 whole and by Range', { timeout: 90_000 }, async () => {
  const config = join(dir, 'worker', 'config.toml');
  await writeWorkerConfig(config, { apiBaseUrl: `${studio.url}/`, label: 'cf-box' });
  const worker = startWorkerProcess(config, { name: 'worker' });
  cleanup.push(() => worker.stop());

  const request = await waitFor('the registration request to be pending', async () => (await studio.api.pending())[0]);
  await studio.api.json('POST', `/workers/pending/${request.requestId}/approve`, { label: 'approved on workerd' });
  const online = await waitFor('the approved worker to come online', async () => (await studio.api.workers()).find((w) => w.state === 'online'));
  assert.equal(online.label, 'approved on workerd');

  const [job] = await studio.api.createJobs([{ model: 'synthetic-image', task: { kind: 'image', prompt: 'a fox on workerd', width: 96, height: 64, ext: 'png' } }]);
  assert.ok(job);
  const done = await waitFor('the job to be done', async () => {
    const view = await studio.api.job(job.id);
    return view.status === 'done' ? view : undefined;
  });
  assert.equal(done.lastWorkerId, online.id);

  const whole = await studio.api.result(job.id);
  assert.equal(whole.type, 'image/png');
  assert.deepEqual([...whole.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');

  const res = await fetch(`${studio.url}/graphics/api/jobs/${job.id}/result`, { headers: { authorization: `Bearer ${studio.api.token}`, range: 'bytes=8-23' } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get('content-range'), `bytes 8-23/${whole.bytes.length}`);
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), whole.bytes.subarray(8, 24));
});
