import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { buildBinaries, type BinaryResult } from '../../../../scripts/build-binaries.ts';
import { makeConfig, TEST_LOCAL_API_TOKEN } from '../helpers/daemon-process.ts';
import { FakeStudio, offerFrame } from '../helpers/fake-studio.ts';
import { pollUntil } from '../helpers/wait.ts';
import { FakeFeed } from '../update/helpers/fake-feed.ts';
import { cleanWorkerEnv, isAlive, localApiOf, startedBy, stopGroup, WorkerProcess } from '../helpers/worker-process.ts';
import { bumpPatch, removeDir, REPO_ROOT, workerManifest } from './helpers/package.ts';

const run = promisify(execFile);

/**
 * The single-file worker for linux-x64 (`npm run build:binaries`), end to end: built from the
 * registry's Node (npm's cache), registered and approved by a studio, running a synthetic job,
 * then updating itself from a static feed of single files: a newer file that does not start is
 * rolled back, the next one takes over. Only linux-x64 is built here (the others by the script).
 */
describe('the single-file worker (linux-x64)', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'builds and runs the linux-x64 file only' : false }, () => {
  let dir: string;
  let version: string;
  let current: BinaryResult;
  let broken: BinaryResult;
  let next: BinaryResult;
  const cleanups: Array<() => Promise<void> | void> = [];

  before(
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'studio-worker-single-file-'));
      version = (await workerManifest()).version;
      const common = { targets: ['linux-x64'], workDir: join(dir, 'work') } as const;
      [current] = (await buildBinaries({ ...common, outDir: join(dir, 'x') })).built as [BinaryResult];
      [next] = (await buildBinaries({ ...common, outDir: join(dir, 'x2'), version: bumpPatch(bumpPatch(version)) })).built as [BinaryResult];
      // X+1 is an executable that does not start as a worker: the registry's plain Node without the
      // injected worker (a broken build), which exits at `node run --config …` (no such script).
      const plainNode = join(dir, 'work', `node-linux-x64-${process.versions.node}`, 'bin', 'node');
      broken = { ...current, path: plainNode, sha256: createHash('sha256').update(await readFile(plainNode)).digest('hex') };
    },
    { timeout: 600_000 },
  );
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  after(async () => {
    await removeDir(dir);
  });

  it('is one executable with its sha256 beside it, and answers `version` on its own', async () => {
    const sums = await readFile(join(dir, 'x', 'SHA256SUMS'), 'utf8');
    const digest = createHash('sha256').update(await readFile(current.path)).digest('hex');
    assert.match(sums, new RegExp(`^${digest}  studio-worker-linux-x64$`, 'm'));
    assert.equal(current.sha256, digest);
    assert.ok(current.bytes > 50 * 1024 * 1024 && current.bytes < 250 * 1024 * 1024, `${current.bytes} bytes`);
    const { stdout } = await run(current.path, ['version'], { env: cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'xdg-version') }) });
    assert.equal(stdout.trim(), `studio-worker ${version}`);
    // Its payload, unpacked on that first start, holds the dependencies package-lock.json locks, for this platform only.
    const [unpacked] = await readdir(join(dir, 'xdg-version', 'studio-worker', 'binary'));
    const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
    for (const name of ['sharp', '@img/sharp-linux-x64', 'zod', 'prom-client', 'tar']) {
      const installed = JSON.parse(await readFile(join(dir, 'xdg-version', 'studio-worker', 'binary', unpacked!, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
      assert.equal(installed.version, lock.packages[`node_modules/${name}`]?.version, name);
    }
    assert.deepEqual((await readdir(join(dir, 'xdg-version', 'studio-worker', 'binary', unpacked!, 'node_modules', '@img'))).sort(), ['colour', 'sharp-libvips-linux-x64', 'sharp-linux-x64']);
  });

  it(
    'registers, is approved, runs a synthetic job; updates itself to a newer single file, rolls back the one that does not start',
    { timeout: 400_000 },
    async () => {
      const studio = await FakeStudio.start();
      cleanups.push(() => studio.close());
      studio.onRegisterRequest = () => ({ status: 200, body: { requestId: 'rr-single', status: 'pending' } });
      studio.onPoll = () => ({ status: 200, body: { status: 'approved', workerId: 'w-single', authToken: 'tok-single' } });

      // The static feed of single files: X+1 (broken) alone until it was fetched, then X+2 as well.
      const feed = await FakeFeed.start();
      cleanups.push(() => feed.close());
      const brokenBytes = await readFile(broken.path);
      const nextBytes = await readFile(next.path);
      feed.file('/x1/studio-worker-linux-x64', brokenBytes);
      feed.file('/x2/studio-worker-linux-x64', nextBytes);
      const fetchedBroken = () => feed.requests.some((request) => request.path === '/x1/studio-worker-linux-x64');
      feed.route('/feed.json', (res) => {
        const versions = [{ version: bumpPatch(version), url: '/x1/studio-worker-linux-x64', sha256: broken.sha256 }];
        if (fetchedBroken()) versions.push({ version: bumpPatch(bumpPatch(version)), url: '/x2/studio-worker-linux-x64', sha256: next.sha256 });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ versions }));
      });

      const config = await makeConfig(studio.url, { approved: false, extra: `auto_update_feed = "${feed.url('/feed.json')}"` });
      cleanups.push(() => config.cleanup());
      const xdg = join(dir, 'xdg');
      // The ONNX runtime on demand (npm from PATH: a single file has none of its own; offline, from npm's cache).
      const added = await run(current.path, ['engines', 'add', 'onnx', '--config', config.configPath], { cwd: dir, env: cleanWorkerEnv({ XDG_DATA_HOME: xdg, npm_config_offline: 'true' }) });
      assert.match(added.stdout, /installed onnxruntime-node \S+ in /);
      const env = cleanWorkerEnv({ XDG_DATA_HOME: xdg, STUDIO_WORKER_LOG: 'info', STUDIO_WORKER_UPDATE_FIRST_CHECK_MS: '1500' });
      const worker = new WorkerProcess([current.path, 'run', '--config', config.configPath], { cwd: dir, env });
      cleanups.push(() => worker.kill());

      // Registration and approval, then a job.
      const connection = await studio.ready(0, 60_000);
      assert.equal(connection.workerId, 'w-single');
      assert.equal(connection.upgrade.authorization, 'Bearer tok-single');
      const hello = await connection.frame((frame) => frame.type === 'hello', 'hello');
      assert.equal(hello.capabilities.agentVersion, version);
      connection.send(offerFrame({ jobId: 'single-job-1' }));
      await connection.jobFrame('accept', 'single-job-1');
      const result = await connection.jobFrame('completeJson', 'single-job-1', { timeoutMs: 30_000 });
      assert.equal(result.attempt, 1);
      // The ONNX host, a child process started as `<file> <dist/onnx-host.js>`, loads the runtime from the data dir.
      const api0 = await localApiOf(config.dir, worker.pid);
      const onnx = await pollUntil(async () => {
        const status = (await (await fetch(new URL('/daemon/status', api0.url), { headers: { authorization: `Bearer ${TEST_LOCAL_API_TOKEN}` } })).json()) as { engines: Array<{ engine: string; available: boolean; detail?: string }> };
        return status.engines.find((engine) => engine.engine === 'onnx' && engine.available);
      }, 'the onnx engine to be available', 30_000, 250);
      assert.match(onnx.detail ?? '', new RegExp(`from ${join(xdg, 'studio-worker', 'runtimes', 'onnx')}`));
      // The single file needs no script: what a service would start is the file itself.
      assert.equal(await readlink(`/proc/${worker.pid}/exe`), current.path);

      // X+1: downloaded, verified, started, fails; X comes back by itself (a new process of the same file).
      const x1 = bumpPatch(version);
      await worker.waitForLog((line) => line.msg === `update available ${version} -> ${x1}; applying`, 'the update to X+1', 120_000);
      const rolledBack = await worker.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith(`rolled back to ${version} (pid `), 'the rollback', 180_000);
      const restartedPid = Number(rolledBack.pid);
      cleanups.push(() => stopGroup(restartedPid));
      assert.equal(await readlink(`/proc/${restartedPid}/exe`), current.path, 'the rollback runs the original file');
      const bad = JSON.parse(await readFile(join(xdg, 'studio-worker', 'update', 'bad-versions.json'), 'utf8')) as Record<string, unknown>;
      assert.ok(JSON.stringify(bad).includes(x1), JSON.stringify(bad));

      // X (restarted) takes X+2: it runs as its own file and reports healthy.
      const x2 = bumpPatch(x1);
      const handedOver = await worker.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith(`${x2} is running (pid `), 'the handover to X+2', 180_000);
      const successorPid = Number(handedOver.pid);
      cleanups.push(() => stopGroup(successorPid));
      const installed = join(xdg, 'studio-worker', 'versions', x2, 'studio-worker');
      assert.equal(await readlink(`/proc/${successorPid}/exe`), installed);
      assert.equal(createHash('sha256').update(await readFile(installed)).digest('hex'), next.sha256);
      const started = await startedBy(config.dir, successorPid);
      assert.equal(started.version, x2);
      const api = await localApiOf(config.dir, successorPid);
      const health = (await (await fetch(new URL('/healthz', api.url))).json()) as { version: string };
      assert.equal(health.version, x2);
      await studio.waitFor(() => studio.frames('hello').find((frame) => frame.capabilities?.agentVersion === x2), `a hello from ${x2}`, 60_000);
      assert.equal(JSON.parse(await readFile(join(xdg, 'studio-worker', 'versions', 'current.json'), 'utf8')).version, x2);
      assert.equal(existsSync(join(xdg, 'studio-worker', 'versions', x1)), false, 'the failed version was removed');

      // Started again from the original file (a service restart), it runs X+2 in its own place.
      await stopGroup(successorPid);
      await pollUntil(() => (isAlive(successorPid) ? undefined : true), 'X+2 to stop');
      await pollUntil(() => (isAlive(restartedPid) ? undefined : true), 'the restarted X to hand over and exit', 30_000);
      const again = new WorkerProcess([current.path, 'run', '--config', config.configPath], { cwd: dir, env: cleanWorkerEnv({ XDG_DATA_HOME: xdg, STUDIO_WORKER_LOG: 'info' }) });
      cleanups.push(() => again.kill());
      const restarted = await startedBy(config.dir, again.pid, 60_000);
      assert.equal(restarted.version, x2, 'the original file follows current.json to X+2');
      assert.equal(await readlink(`/proc/${again.pid}/exe`), installed, 'execve: X+2 took the same pid');
      assert.deepEqual(await again.stop(), { code: 0, signal: null });
    },
  );
});
