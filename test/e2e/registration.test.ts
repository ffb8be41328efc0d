// Registration through real processes, on both studio hosts (test/helpers/hosts.ts): a worker with
// no credentials registers, waits for the operator, and then takes jobs; rejection; a stale request
// after the studio forgot it; --reset (the worker's own command, no studio: once).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readConfig } from 'studio-worker';
import { forEachHost, type StudioHost } from '../helpers/hosts.ts';
import { runWorkerCli, startStudioProcess, startWorkerProcess, writeWorkerConfig, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

let dir: string;
const cleanup: Array<() => Promise<unknown>> = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-reg-'));
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

async function studioIn(host: StudioHost, name: string, port?: number): Promise<StudioProc> {
  const studio = await startStudioProcess({ dataDir: join(dir, host, name), port, host });
  cleanup.push(() => studio.stop());
  return studio;
}

let workerDirs = 0;
async function unregisteredWorker(name: string, studio: StudioProc): Promise<{ proc: Proc; config: string }> {
  // One directory per worker started (the same name runs once per host).
  const config = join(dir, `${name}-${++workerDirs}`, 'config.toml');
  await writeWorkerConfig(config, { apiBaseUrl: `${studio.url}/`, label: name });
  const proc = startWorkerProcess(config, { name });
  cleanup.push(() => proc.stop());
  return { proc, config };
}

function daemonState(config: string): { registration: { state: string; reason?: string; requestId?: string }; session: { state: string } } | undefined {
  try {
    return JSON.parse(readFileSync(join(config, '..', 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

forEachHost((host) => {
  describe('registration end to end', () => {
    it('pending → approved: the worker connects and takes a job; only the secret hash left the machine', async () => {
      const studio = await studioIn(host, 's1');
      const { config } = await unregisteredWorker('fresh', studio);
      const request = await waitFor('the request to appear as pending', async () => (await studio.api.pending())[0]);
      const saved = (await readConfig(config)).config;
      assert.equal(request.installId, saved.installId);
      assert.ok(saved.registrationSecret && saved.registrationSecret.length === 64);
      assert.ok(!studio.proc.output.includes(saved.registrationSecret), 'the raw secret never reaches the studio log');
      await studio.api.json('POST', `/workers/pending/${request.requestId}/approve`, { label: 'approved box' });
      const worker = await waitFor('the approved worker to come online', async () => (await studio.api.workers()).find((w) => w.state === 'online'));
      assert.equal(worker.label, 'approved box');
      const after = (await readConfig(config)).config;
      assert.equal(after.workerId, worker.id);
      assert.ok(after.authToken);
      assert.equal(after.registrationSecret, undefined, 'the secret is cleared after approval');
      assert.equal(after.registrationRequestId, undefined);
      const [job] = await studio.api.createJobs([{ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'hi' }] } }]);
      assert.ok(job);
      await waitFor('the job to be done', async () => (await studio.api.job(job.id)).status === 'done');
      assert.equal((await studio.api.job(job.id)).lastWorkerId, worker.id);
    });

    it('rejected: the worker stops asking and says why', async () => {
      const studio = await studioIn(host, 's2');
      const { config, proc } = await unregisteredWorker('rejected', studio);
      const request = await waitFor('a pending request', async () => (await studio.api.pending())[0]);
      await studio.api.json('POST', `/workers/pending/${request.requestId}/reject`, { reason: 'not one of ours' });
      const state = await waitFor('the worker to see the rejection', () => {
        const s = daemonState(config);
        return s?.registration.state === 'rejected' ? s : undefined;
      });
      assert.equal(state.registration.reason, 'not one of ours');
      await proc.waitForOutput(/register --reset/);
      // It sends no new requests: an absence needs an observation window, here 10 poll intervals.
      const requests = () => studio.proc.logLines('registration').filter((l) => /new registration request/.test(String(l.msg))).length;
      assert.equal(requests(), 1);
      await new Promise((resolve) => setTimeout(resolve, 10 * 100));
      assert.equal(requests(), 1, 'no new registration request during 10 poll intervals');
      assert.deepEqual(await studio.api.pending(), []);
      assert.ok(proc.alive, 'the daemon keeps running (no exit, no loop)');
      assert.equal(daemonState(config)?.registration.state, 'rejected');
      assert.equal((await studio.api.workers()).length, 0);
    });

    it('stale: when the studio no longer knows the request, the worker asks again with the same install id', async () => {
      const first = await studioIn(host, 's3a');
      const { config } = await unregisteredWorker('stale', first);
      const original = await waitFor('a pending request', async () => (await first.api.pending())[0]);
      // The studio loses its data (a new data dir on the same port): the poll answers 404.
      await first.stop();
      const second = await studioIn(host, 's3b', first.port);
      const renewed = await waitFor('a new request at the new studio', async () => (await second.api.pending())[0], { timeoutMs: 30_000 });
      assert.equal(renewed.installId, original.installId);
      assert.notEqual(renewed.requestId, original.requestId);
      // The worker saves the new request id right after the studio answered.
      await waitFor('the worker to save the new request id', async () => (await readConfig(config)).config.registrationRequestId === renewed.requestId);
    });

  });
});

describe('registration end to end (the worker alone)', () => {
  it('register --reset clears every credential and the install id', async () => {
    const config = join(dir, 'reset', 'config.toml');
    await writeWorkerConfig(config, {
      apiBaseUrl: 'http://127.0.0.1:9/',
      workerId: 'w-old',
      authToken: 'tok-old',
      installId: 'inst-old-0001',
      registrationRequestId: 'rr-old',
      registrationSecret: 'sec-old',
    });
    const { code, output } = await runWorkerCli(['register', '--reset', '--api-base-url', 'https://studio.example/', '--config', config]);
    assert.equal(code, 0, output);
    const after = (await readConfig(config)).config;
    assert.equal(after.workerId, undefined);
    assert.equal(after.authToken, undefined);
    assert.equal(after.installId, undefined);
    assert.equal(after.registrationRequestId, undefined);
    assert.equal(after.registrationSecret, undefined);
    assert.equal(after.apiBaseUrl, 'https://studio.example/');
    assert.ok(!output.includes('tok-old') && !output.includes('sec-old'));
  });
});
