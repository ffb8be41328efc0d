import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { ensureWorkerBuilt } from '../../../../scripts/build-worker.ts';
import { makeConfig, TEST_LOCAL_API_TOKEN } from '../helpers/daemon-process.ts';
import { FakeStudio, offerFrame } from '../helpers/fake-studio.ts';
import { pollUntil } from '../helpers/wait.ts';
import { FakeFeed } from '../update/helpers/fake-feed.ts';
import { cleanWorkerEnv, isAlive, localApiOf, startedBy, stopGroup, WorkerProcess } from '../helpers/worker-process.ts';
import { bumpPatch, installTarball, npmPack, removeDir, REPO_ROOT, stagePackage, workerManifest, WORKER_DIR } from './helpers/package.ts';

const run = promisify(execFile);
/** What `npm i studio-worker` may bring, all dependencies included (issue 17). */
const INSTALL_BUDGET_MB = 40;

/** Bytes of the files below `dir` (apparent sizes, links not followed), as `du --apparent-size` counts. */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/**
 * The release as a user gets it: `npm run build`, `npm pack -w studio-worker`, `npm install <tgz>`
 * into a project elsewhere, then the installed bin (which Node runs from node_modules, where it
 * refuses to strip types: only the bundle can run there). Needs the npm registry for the
 * dependencies (sharp, pino, …); npm's cache makes it quick after the first time. onnxruntime-node
 * comes from npm's cache through `studio-worker engines add onnx`.
 */
describe('the published package, installed from its tarball', () => {
  let dir: string;
  let project: string;
  let bin: string;
  let version: string;
  const cleanups: Array<() => Promise<void> | void> = [];

  before(
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'studio-worker-release-'));
      version = (await workerManifest()).version;
      await ensureWorkerBuilt();
      const tarball = await npmPack(REPO_ROOT, join(dir, 'packs'), ['-w', 'studio-worker']);
      project = join(dir, 'project');
      await installTarball(project, tarball);
      bin = join(project, 'node_modules', '.bin', 'studio-worker');
    },
    { timeout: 300_000 },
  );
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  after(async () => {
    await removeDir(dir);
  });

  /** A daemon started with the installed bin, its data dir (installed versions) inside the test's dir. */
  function startInstalled(configPath: string, env: Record<string, string> = {}): WorkerProcess {
    const daemon = new WorkerProcess([process.execPath, bin, 'run', '--config', configPath], {
      cwd: project,
      env: cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'xdg'), STUDIO_WORKER_LOG: 'info', ...env }),
    });
    cleanups.push(() => daemon.kill());
    return daemon;
  }

  it('ships the bundle and no sources; the workspace packages are inlined, not dependencies', async () => {
    const installed = join(project, 'node_modules', 'studio-worker');
    assert.equal(existsSync(join(installed, 'src')), false);
    assert.equal(existsSync(join(installed, 'dist', 'cli.js')), true);
    assert.equal(existsSync(join(installed, 'dist', 'ui', 'index.html')), true);
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.deepEqual(Object.keys(manifest.dependencies).filter((name) => name.startsWith('@studio-worker/')), []);
    assert.equal(existsSync(join(project, 'node_modules', '@studio-worker')), false, 'npm installed no workspace package');
    // Heavy engine runtimes are not dependencies: `studio-worker engines add onnx` installs one on demand.
    assert.equal(existsSync(join(project, 'node_modules', 'onnxruntime-node')), false, 'onnxruntime-node is not installed with the worker');
  });

  it(`installs into a fresh project at ${INSTALL_BUDGET_MB} MB or less (the worker and all its dependencies)`, async () => {
    const bytes = await diskUsage(join(project, 'node_modules'));
    const mb = bytes / 1024 / 1024;
    process.stdout.write(`# installed size: ${mb.toFixed(1)} MB\n`);
    assert.ok(mb <= INSTALL_BUDGET_MB, `node_modules holds ${mb.toFixed(1)} MB; the budget is ${INSTALL_BUDGET_MB} MB`);
    // No install script anywhere in the tree: nothing reaches a host other than the registry.
    const installed = JSON.parse(await readFile(join(project, 'node_modules', '.package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    assert.deepEqual(Object.entries(installed.packages).filter(([, entry]) => entry.hasInstallScript).map(([path]) => path), []);
  });

  it('`studio-worker version` runs from node_modules', async () => {
    const { stdout } = await run(process.execPath, [bin, 'version'], { cwd: project, env: cleanWorkerEnv({}) });
    assert.equal(stdout.trim(), `studio-worker ${version}`);
  });

  it('runs a daemon from node_modules: hello, welcome, an offer for the synthetic engine, completeJson; its local API and the ONNX host work', async () => {
    const studio = await FakeStudio.start();
    cleanups.push(() => studio.close());
    // No update check against the real registry; the ONNX engine on, so its host process (dist/onnx-host.js) starts.
    const config = await makeConfig(studio.url, { extra: 'auto_update_enabled = false\n[engines.onnx]\n' });
    cleanups.push(() => config.cleanup());
    // Until the runtime is there, `status` says what to run.
    const before = await run(process.execPath, [bin, 'status', '--config', config.configPath], { cwd: project, env: cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'xdg') }) });
    assert.match(before.stdout, /runtimes: +onnx: onnxruntime-node \S+ is not installed; run `studio-worker engines add onnx`/);
    // The runtime on demand, from npm's cache (the repository's install filled it): what a user's
    // `studio-worker engines add onnx` does against the registry.
    const added = await run(process.execPath, [bin, 'engines', 'add', 'onnx', '--config', config.configPath], { cwd: project, env: cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'xdg'), npm_config_offline: 'true' }) });
    assert.match(added.stdout, /installed onnxruntime-node \S+ in /);
    const after = await run(process.execPath, [bin, 'status', '--config', config.configPath], { cwd: project, env: cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'xdg') }) });
    assert.doesNotMatch(after.stdout, /runtimes:/);
    const daemon = startInstalled(config.configPath);

    const connection = await studio.ready(0, 60_000);
    const hello = await connection.frame((frame) => frame.type === 'hello', 'hello');
    assert.equal(hello.capabilities.agentVersion, version);
    connection.send(offerFrame({ jobId: 'release-job-1' }));
    await connection.jobFrame('accept', 'release-job-1');
    const result = await connection.jobFrame('completeJson', 'release-job-1', { timeoutMs: 30_000 });
    assert.equal(result.attempt, 1);

    const api = await localApiOf(config.dir, daemon.pid);
    const health = (await (await fetch(new URL('/healthz', api.url))).json()) as { ok: boolean; version: string };
    assert.deepEqual({ ok: health.ok, version: health.version }, { ok: true, version });
    // The web UI is served from dist/ui.
    const page = await fetch(new URL('/', api.url));
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    // The ONNX engine's host (a process of its own, started from dist/) loaded onnxruntime-node.
    const status = (await (await fetch(new URL('/daemon/status', api.url), { headers: { authorization: `Bearer ${TEST_LOCAL_API_TOKEN}` } })).json()) as { engines: Array<{ engine: string; available: boolean; reason?: string; detail?: string }> };
    const onnx = status.engines.find((engine) => engine.engine === 'onnx');
    assert.equal(onnx?.available, true, JSON.stringify(onnx));
    assert.match(onnx?.detail ?? '', new RegExp(`from ${join(dir, 'xdg', 'studio-worker', 'runtimes', 'onnx')}`), 'the runtime came from the data dir');

    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });
  });

  it(
    'updates itself to X+1 from an npm feed (tarball with sha512 integrity), hands over, and X+1 reports healthy',
    { timeout: 240_000 },
    async () => {
      const next = bumpPatch(version);
      // X+1: the same build packed from a temp copy with the version bumped.
      const staged = await stagePackage(join(dir, `stage-${next}`), { dist: join(WORKER_DIR, 'dist'), version: next });
      const nextTarball = await npmPack(staged, join(dir, 'packs'));
      const feed = await FakeFeed.start();
      cleanups.push(() => feed.close());
      feed.npm([{ version: next, tarball: await readFile(nextTarball) }], { latest: next });
      const studio = await FakeStudio.start();
      cleanups.push(() => studio.close());
      const config = await makeConfig(studio.url, { extra: `auto_update_feed = "${feed.url('/studio-worker')}"` });
      cleanups.push(() => config.cleanup());

      // npm offline: the dependencies of X+1 come from the cache the first install filled, so the
      // update provably never reaches the real registry (the release itself comes from the fake feed).
      const old = startInstalled(config.configPath, { STUDIO_WORKER_UPDATE_FIRST_CHECK_MS: '300', npm_config_offline: 'true' });
      await old.waitForLog((line) => line.msg === `update available ${version} -> ${next}; applying`, 'the update starting', 60_000);
      await old.waitForLog((line) => /^downloaded .*; sha512 matches/.test(line.msg), 'the verified download', 60_000);
      const handedOver = await old.waitForLog((line) => line.msg.startsWith(`${next} is running (pid `), 'the handover', 60_000);
      const successorPid = Number(handedOver.pid);
      cleanups.push(() => stopGroup(successorPid));
      assert.deepEqual(await old.exited(), { code: 0, signal: null });

      const started = await startedBy(config.dir, successorPid);
      assert.equal(started.version, next);
      assert.equal(started.updatedFrom, version);
      assert.ok(isAlive(successorPid));
      const api = await localApiOf(config.dir, successorPid);
      const health = (await (await fetch(new URL('/healthz', api.url))).json()) as { version: string };
      assert.equal(health.version, next);
      await studio.waitFor(() => studio.frames('hello').find((frame) => frame.capabilities?.agentVersion === next), `a hello from ${next}`, 30_000);

      const versions = join(dir, 'xdg', 'studio-worker', 'versions');
      assert.equal(JSON.parse(await readFile(join(versions, 'current.json'), 'utf8')).version, next);
      assert.equal(existsSync(join(versions, next, 'node_modules', 'sharp')), true, 'the updater installed the dependencies of X+1');
      assert.equal(feed.tarballRequests().length, 1);
      await stopGroup(successorPid);
      await pollUntil(() => (isAlive(successorPid) ? undefined : true), 'the new version to stop');
    },
  );
});
