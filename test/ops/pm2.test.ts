// The PM2 dev loop as a developer runs it: ecosystem.config.cjs under a private PM2, the studio and
// the dev worker from scripts/dev-worker.ts, jobs through the studio API, and `pm2 stop` leaving no
// process behind.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isProcessAlive } from '../../packages/worker/src/platform/lock.ts';
import { ensureWorkerBuilt } from '../../scripts/build-worker.ts';
import { ROOT } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { Pm2Sandbox } from './pm2-harness.ts';

const llm = (model: string, content: string) => ({ model, task: { kind: 'llm', messages: [{ role: 'user', content }] } });

async function workerOnline(sandbox: Pm2Sandbox, workerId: string): Promise<void> {
  await waitFor(`worker ${workerId} online`, async () => (await sandbox.api.workers()).find((w) => w.id === workerId)?.state === 'online', { timeoutMs: 20_000 });
}

describe('PM2 dev loop: stable variant', { timeout: 90_000 }, () => {
  let sandbox: Pm2Sandbox;
  let workerId: string;

  before(async () => {
    // The stable variant runs the built bundle (`npm run build`, as the dev-loop doc says).
    await ensureWorkerBuilt();
    sandbox = await Pm2Sandbox.create('pm2-stable-');
    await sandbox.start('studio');
    workerId = await sandbox.provisionWorker();
  });

  after(async () => {
    await sandbox?.destroy();
  });

  it('studio + worker run a job; `pm2 stop all` leaves no process of the sandbox (studio, daemon, any child)', async () => {
    await sandbox.start('worker');
    await workerOnline(sandbox, workerId);
    const [job] = await sandbox.api.createJobs([llm('synthetic-llm', 'through pm2')]);
    assert.ok(job);
    const done = await waitFor('the job done', async () => {
      const view = await sandbox.api.job(job.id);
      return view.status === 'done' ? view : undefined;
    });
    assert.equal(done.attempts?.at(-1)?.workerId, workerId);

    const apps = await sandbox.jlist();
    const studioPid = apps.find((app) => app.name === 'studio')?.pid ?? 0;
    const workerPid = apps.find((app) => app.name === 'worker')?.pid ?? 0;
    const daemonPid = sandbox.daemonPid();
    assert.equal(daemonPid, workerPid, 'the stable variant runs the daemon as the PM2 process itself');
    assert.equal(apps.find((app) => app.name === 'worker')?.pm2_env.pm_exec_path, join(ROOT, 'packages', 'worker', 'dist', 'cli.js'), 'the stable variant runs the built bundle');
    const running = sandbox.processesLeft().map((p) => p.pid);
    assert.ok(running.includes(studioPid) && running.includes(workerPid), `the process scan sees the apps: ${JSON.stringify(sandbox.processesLeft())}`);

    await sandbox.pm2('stop', 'all');
    assert.deepEqual(sandbox.processesLeft(), [], 'nothing of the sandbox is left running');
    assert.ok(!isProcessAlive(studioPid) && !isProcessAlive(workerPid));
    assert.deepEqual((await sandbox.jlist()).map((app) => [app.name, app.pm2_env.status]), [['studio', 'stopped'], ['worker', 'stopped']]);
    // A clean stop: the daemon said so and let go of its lock (PM2 did not have to SIGKILL it).
    assert.match(sandbox.log('worker'), /"op":"shutdown"[^\n]*"msg":"stopped"/);
    assert.equal(existsSync(join(sandbox.workerConfig, '..', 'daemon.lock')), false);
  });

  it('the two flavours never run at once: the second exits 3 and PM2 leaves it stopped', async () => {
    await sandbox.start('studio');
    await sandbox.start('worker-watch');
    await workerOnline(sandbox, workerId);
    await sandbox.start('worker');
    const second = await waitFor('the second flavour to stop', async () => {
      const app = await sandbox.app('worker');
      return app?.pm2_env.status === 'stopped' ? app : undefined;
    });
    assert.equal(second.pm2_env.exit_code, 3);
    assert.equal(second.pm2_env.restart_time, 0, 'not restarted: stop_exit_codes [3]');
    assert.match(sandbox.log('worker'), /another studio-worker daemon \(pid \d+\) is already running for the config dir/);
    // Still exactly one session for the worker id, and it is the watched one.
    const [job] = await sandbox.api.createJobs([llm('synthetic-llm', 'one flavour')]);
    assert.ok(job);
    await waitFor('the job done', async () => (await sandbox.api.job(job.id)).status === 'done');
    await sandbox.pm2('stop', 'all');
    assert.deepEqual(sandbox.processesLeft(), []);
  });
});

describe('PM2 dev loop: watching variant', { timeout: 90_000 }, () => {
  let sandbox: Pm2Sandbox;
  let workerId: string;

  before(async () => {
    sandbox = await Pm2Sandbox.create('pm2-watch-');
    await sandbox.start('studio');
    workerId = await sandbox.provisionWorker();
    // Longer than the worker's shutdown grace (5 s), so the restart has to hand it back.
    await sandbox.api.json('POST', '/models', { id: 'dev-slow-llm', kind: 'llm', source: { engine: 'synthetic', cliDefaults: { delayMs: 7_000 } } });
  });

  after(async () => {
    await sandbox?.destroy();
  });

  it('a source change mid-job restarts the daemon; the job is handed back and ends done; no orphan', async () => {
    await sandbox.start('worker-watch');
    await workerOnline(sandbox, workerId);
    const watcherPid = (await sandbox.app('worker-watch'))?.pid ?? 0;
    const [job] = await sandbox.api.createJobs([llm('dev-slow-llm', 'interrupted by a source change')]);
    assert.ok(job);
    await waitFor('the job to run', async () => (await sandbox.api.job(job.id)).status === 'running');
    const firstDaemon = sandbox.daemonPid() ?? 0;
    assert.notEqual(firstDaemon, watcherPid, 'under the watcher the daemon is a child process');

    writeFileSync(join(sandbox.watchDir, 'edited.ts'), 'export const edited = true;\n');
    const finished = await waitFor(
      'the job to end',
      async () => {
        const view = await sandbox.api.job(job.id);
        return view.status === 'done' || view.status === 'failed' ? view : undefined;
      },
      { timeoutMs: 45_000 },
    );
    assert.equal(finished.status, 'done');
    assert.equal(finished.failures, 0);
    assert.deepEqual(finished.attempts?.map((a) => a.outcome), ['handed_back', 'done']);
    const secondDaemon = sandbox.daemonPid() ?? 0;
    assert.notEqual(secondDaemon, firstDaemon, 'the restarted daemon finished it');
    assert.equal(isProcessAlive(firstDaemon), false, 'the old daemon is gone, not orphaned');
    const app = await sandbox.app('worker-watch');
    assert.equal(app?.pid, watcherPid, 'node restarted the daemon inside the same PM2 process');
    assert.equal(app?.pm2_env.restart_time, 0);

    await sandbox.pm2('stop', 'all');
    assert.deepEqual(sandbox.processesLeft(), [], 'the watcher took its daemon down with it');
    assert.equal(isProcessAlive(secondDaemon), false);
  });
});
