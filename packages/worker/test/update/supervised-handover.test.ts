import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { systemdUnit, stopTimeoutFor } from '../../src/ops/service.ts';
import { EXIT_RESTART } from '../../src/update/supervision.ts';
import { makeConfig, type TestConfig } from '../helpers/daemon-process.ts';
import { FakeStudio } from '../helpers/fake-studio.ts';
import { pollUntil } from '../helpers/wait.ts';
import { buildWorker } from '../../../../scripts/build-worker.ts';
import { bumpPatch, linkRepoNodeModules, packageEntries, removeDir, stagePackage, workerManifest } from '../release/helpers/package.ts';
import { FakeFeed } from './helpers/fake-feed.ts';
import { FakeSystemd, parseServiceUnit } from './helpers/fake-systemd.ts';
import { tarGz } from './helpers/tarball.ts';
import { cleanWorkerEnv, readJson, startedBy } from '../helpers/worker-process.ts';

/**
 * The update under systemd, with real processes: the launcher (bin/studio-worker.js of a built
 * package) and the daemon it runs, started by a stand-in for systemd that reads the unit
 * `install-service` writes and restarts as that unit says. The new version comes from a feed as a
 * tarball of the same build with a higher version (without dependencies, so the updater runs no npm:
 * the bundles find their packages in a node_modules linked above them).
 */
describe('auto-update under a service manager (systemd unit, real launcher and daemon)', () => {
  let root: string;
  let dist: string;
  let current: string;
  let next: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'studio-worker-supervised-'));
    dist = join(root, 'build', 'dist');
    await buildWorker({ outDir: dist });
    current = (await workerManifest()).version;
    next = bumpPatch(current);
  });
  after(async () => {
    await removeDir(root);
  });

  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  interface Setup {
    dir: string;
    config: TestConfig;
    studio: FakeStudio;
    versions: string;
    systemd: FakeSystemd;
    unitText: string;
  }

  async function setup(name: string, release: { cliSource?: string }): Promise<Setup> {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    await linkRepoNodeModules(dir);
    const launcher = await stagePackage(join(dir, 'launcher'), { dist });
    const newVersion = await stagePackage(join(dir, 'release'), { dist, version: next, withoutDependencies: true, ...release });
    const feed = await FakeFeed.start();
    cleanups.push(() => feed.close());
    feed.npm([{ version: next, tarball: tarGz(await packageEntries(newVersion)) }], { latest: next });
    const studio = await FakeStudio.start();
    cleanups.push(() => studio.close());
    const config = await makeConfig(studio.url, { extra: `auto_update_feed = "${feed.url('/studio-worker')}"` });
    cleanups.push(() => config.cleanup());
    const unitText = systemdUnit([process.execPath, join(launcher, 'bin', 'studio-worker.js'), 'run', '--config', config.configPath], { stopTimeoutSecs: stopTimeoutFor(5), logFilter: 'info' });
    const xdg = join(dir, 'xdg');
    // RestartSec=5 of the unit, shortened: the test is about what restarts, not when.
    const systemd = new FakeSystemd(parseServiceUnit(unitText), {
      cwd: dir,
      env: cleanWorkerEnv({ XDG_DATA_HOME: xdg, STUDIO_WORKER_UPDATE_FIRST_CHECK_MS: '200' }),
      restartDelayMs: 100,
    });
    cleanups.push(() => systemd.kill());
    return { dir, config, studio, versions: join(xdg, 'studio-worker', 'versions'), systemd, unitText };
  }

  it('exits for a restart, and the restart runs the new version, which confirms itself', async () => {
    const { config, studio, versions, systemd, unitText } = await setup('healthy', {});
    assert.match(unitText, /^Environment="STUDIO_WORKER_SUPERVISED=systemd"$/m);
    systemd.start();

    const first = await systemd.run(0);
    await first.waitForLog((line) => line.msg.includes(`exiting with ${EXIT_RESTART} so that systemd starts ${next}`), 'the supervised handover');
    assert.deepEqual(await first.exited(), { code: EXIT_RESTART, signal: null });
    assert.deepEqual(first.logs().filter((line) => /is running \(pid/.test(line.msg)), [], 'no successor was started by the old daemon');

    const second = await systemd.run(1);
    await second.waitForStderr(new RegExp(`starting ${next} \\(updated from ${current}\\)`), 'the launcher starting the pending version');
    const started = await startedBy(config.dir, second.pid);
    assert.equal(started.version, next);
    assert.equal(started.updatedFrom, current);
    const hello = await studio.waitFor(() => studio.frames('hello').find((frame) => frame.capabilities?.agentVersion === next), `a hello from ${next}`);
    assert.ok(hello);
    await second.waitForLog((line) => line.msg === `${next} is healthy after the update from ${current}; update confirmed`, 'the confirmation');
    assert.equal(existsSync(join(versions, 'pending.json')), false, 'pending.json is gone once confirmed');
    assert.equal((await readJson<{ version: string }>(join(versions, 'current.json')))?.version, next);

    assert.deepEqual(await systemd.stop(), { code: 0, signal: null });
    assert.equal(systemd.runs.length, 2, 'one restart, for the update');
  });

  it('rolls a version that crashes on start back after its one try, and does not try it again', async () => {
    const { config, versions, systemd } = await setup('broken', { cliSource: "throw new Error('a broken release');\n" });
    systemd.start();

    const first = await systemd.run(0);
    assert.deepEqual(await first.exited(), { code: EXIT_RESTART, signal: null });
    const second = await systemd.run(1);
    await second.waitForStderr(/a broken release/, 'the broken version failing');
    assert.equal((await second.exited()).code, 1);
    const pending = await readJson<{ version: string; startedAttempts: number; startedPid: number }>(join(versions, 'pending.json'));
    assert.deepEqual(pending && { version: pending.version, startedAttempts: pending.startedAttempts, startedPid: pending.startedPid }, { version: next, startedAttempts: 1, startedPid: second.pid });

    // Restart=on-failure brings the launcher back; it sees the try was made and rolls back.
    const third = await systemd.run(2);
    await third.waitForStderr(new RegExp(`rolled back to ${current}; ${next} will not be tried again`), 'the rollback note');
    const started = await startedBy(config.dir, third.pid);
    assert.equal(started.version, current);
    await third.waitForLog((line) => line.msg === `up to date at ${current}`, 'the next check skipping the bad version');
    assert.equal(existsSync(join(versions, 'pending.json')), false);
    assert.equal((await readJson<{ version: string }>(join(versions, 'current.json')))?.version, current);
    const bad = await readJson<{ versions: Record<string, { reason: string }> }>(join(versions, '..', 'update', 'bad-versions.json'));
    assert.match(bad?.versions[next]?.reason ?? '', /did not report healthy after the update/);

    assert.deepEqual(await systemd.stop(), { code: 0, signal: null });
    assert.equal(systemd.runs.length, 3, 'the update, its one failed try, the rollback: nothing more');
    assert.equal(systemd.crashLoop, false);
    // The log file of the rollback's daemon says why.
    const log = await pollUntil(async () => (await readFile(join(config.dir, 'logs', 'daemon.log'), 'utf8').catch(() => '')) || undefined, 'the daemon log');
    assert.match(log, new RegExp(`up to date at ${current.replaceAll('.', '\\.')}`));
  });
});
