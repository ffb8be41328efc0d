// Prometheus /metrics from outside, on both studio hosts (test/helpers/hosts.ts): a real studio
// process, a real worker, a read token scraping.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { forEachHost } from '../helpers/hosts.ts';
import { startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  let workers: Proc[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-metrics-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
    workers = await startApprovedWorkers(studio, dir, ['w1']);
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await studio?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function value(text: string, series: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  describe('GET /metrics', () => {
    it('counts endings, attempts, result bytes and workers online; a read token may scrape, a submit token may not', async () => {
      const { token: read } = await studio.api.json<{ token: string }>('POST', '/tokens', { name: 'prometheus', scope: 'read' });
      const { token: submit } = await studio.api.json<{ token: string }>('POST', '/tokens', { name: 'script', scope: 'submit' });
      const scrape = async (token = read) => {
        const res = await studio.api.request('GET', '/metrics', undefined, token);
        return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
      };
      assert.equal((await scrape(submit)).status, 403);
      const first = await scrape();
      assert.equal(first.status, 200);
      assert.match(first.type, /^text\/plain; version=0\.0\.4/);
      assert.equal(value(first.text, 'studio_workers_online{engine="synthetic"}'), 1);

      // A job no worker can run stays queued: the gauge shows it by model and status.
      await studio.api.json('POST', '/models', { id: 'nobody-runs', kind: 'image', source: { engine: 'comfyui' } });
      await studio.api.json('POST', '/jobs', { model: 'nobody-runs', task: { kind: 'image', prompt: 'waits' } });
      const jobs = await studio.api.createJobs(Array.from({ length: 4 }, (_, i) => ({ model: 'synthetic-image', task: { kind: 'image', prompt: `m${i}`, width: 32, height: 32 } })));
      await waitFor('4 jobs done', async () => (await studio.api.counts()).done === 4);
      const bytes = (await Promise.all(jobs.map(async (j) => (await studio.api.job(j.id)).result))).reduce((n, r) => n + (r?.type === 'file' ? r.bytes : 0), 0);
      const after = (await scrape()).text;
      assert.equal(value(after, 'studio_jobs_finished_total{model="synthetic-image",outcome="done"}'), 4);
      assert.equal(value(after, 'studio_jobs_open{model="nobody-runs",status="queued"}'), 1);
      assert.equal(value(after, 'studio_attempts_total{outcome="done"}'), 4);
      assert.equal(value(after, 'studio_dispatch_latency_seconds_count{model="synthetic-image"}'), 4);
      assert.equal(value(after, 'studio_result_upload_bytes_total'), bytes);
      assert.equal(value((await scrape()).text, 'studio_jobs_finished_total{model="synthetic-image",outcome="done"}'), 4, 'a second scrape counts nothing twice');
    });
  });
});
