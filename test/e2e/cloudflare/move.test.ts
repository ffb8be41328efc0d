// Moving a studio from the embedded host to the Cloudflare host (docs/operations/cloudflare.md):
// `studio export` reads the stopped embedded studio's database, `studio import` sends it to the
// Cloudflare host under workerd (POST /graphics/api/admin/import, to every pool), and the worker
// approved on the old studio connects to the new one with its old credentials and finishes the
// jobs that were still queued there.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Proc, STUDIO_BIN, startStudioProcess, startWorkerProcess, writeWorkerConfig, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
const cleanup: Array<() => Promise<unknown>> = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-move-'));
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = new Proc('studio-cli', [STUDIO_BIN, ...args], { STUDIO_TOKEN: '', STUDIO_ADMIN_TOKEN: '' });
  const { code } = await proc.exited;
  return { code, output: proc.output };
}

it('export from the embedded host, import into workerd: the old worker credentials work and the queued jobs finish', { timeout: 120_000 }, async () => {
  // The embedded studio: one approved worker that never connected, three jobs waiting for it.
  const nodeData = join(dir, 'node-studio');
  const old: StudioProc = await startStudioProcess({ dataDir: nodeData, host: 'node' });
  const creds = await old.api.createWorker('moving-box');
  const queued = await old.api.createJobs(['one', 'two', 'three'].map((content) => ({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content }] } })));
  await old.stop();

  const exported = await run(['export', '--data-dir', nodeData]);
  assert.equal(exported.code, 0, exported.output);
  const file = join(dir, 'export.json');
  writeFileSync(file, exported.output.slice(exported.output.indexOf('{'), exported.output.lastIndexOf('}') + 1));

  const cf: StudioProc = await startStudioProcess({ dataDir: join(dir, 'cf-studio'), host: 'cloudflare' });
  cleanup.push(() => cf.stop());
  const imported = await run(['import', '--url', cf.url, '--token', cf.api.token, file]);
  assert.equal(imported.code, 0, imported.output);
  assert.match(imported.output, /"added": ?3/);
  const ids = queued.map((j) => j.id);
  for (const id of ids) assert.equal((await cf.api.job(id)).status, 'queued');

  // The worker keeps the id and token the embedded studio gave it; only the URL changes.
  const config = join(dir, 'worker', 'config.toml');
  await writeWorkerConfig(config, { apiBaseUrl: `${cf.url}/`, ...creds });
  const worker = startWorkerProcess(config, { name: 'moved-worker' });
  cleanup.push(() => worker.stop());
  await waitFor('the moved jobs done on workerd', async () => (await Promise.all(ids.map((id) => cf.api.job(id)))).every((j) => j.status === 'done'), { timeoutMs: 60_000 });
  const done = await cf.api.job(ids[0] as string);
  assert.equal(done.lastWorkerId, creds.workerId);
});
