import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { JobGate } from '../../src/platform/job-gate.ts';
import { fakeWorkerPackage, sha256Hex, sha512Integrity, tarGz } from './helpers/tarball.ts';
import { makeWorld, type World } from './helpers/world.ts';

const NPM_INSTALL_ARGV = ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'];
const pkg = (version: string, options: Parameters<typeof fakeWorkerPackage>[2] = {}) => tarGz(fakeWorkerPackage(version, 'healthy', options));

describe('auto-updater', () => {
  let world: World;
  beforeEach(async () => {
    world = await makeWorld();
  });
  afterEach(async () => {
    const origin = world.feed.origin;
    await world.cleanup();
    // Never anything but the fake feed: no registry, no mirror, no CDN.
    for (const url of world.fetched) assert.equal(new URL(url).origin, origin, `unexpected request to ${url}`);
  });

  /** Nothing of 0.2.0 reached the versions dir, the pointer still names 0.1.0, nothing was started. */
  async function assertNothingSwitched(): Promise<void> {
    assert.equal((await world.pointer())?.version, '0.1.0');
    assert.deepEqual((await readdir(world.paths.versions)).filter((name) => !name.startsWith('current.json') && name !== '.install.lock'), ['0.1.0']);
    assert.deepEqual(world.launcher.starts, []);
    assert.deepEqual(world.events, []);
    assert.equal(world.gate.busy, false, 'the job gate was given back');
    if (existsSync(world.paths.downloads)) assert.deepEqual(await readdir(world.paths.downloads), []);
  }

  it('applies the highest good version: verified, unpacked, npm run, current switched, restarted, handed over', async () => {
    world.feed.npm(
      [
        { version: '0.1.0', tarball: pkg('0.1.0') },
        { version: '0.1.5', tarball: pkg('0.1.5') },
        { version: '0.2.0', tarball: pkg('0.2.0') },
        { version: '0.3.0', tarball: pkg('0.3.0'), deprecated: 'crashes on start' },
        { version: '0.4.0-rc.1', tarball: pkg('0.4.0-rc.1') },
      ],
      { latest: '0.3.0', next: '0.4.0-rc.1' },
    );
    const updater = world.updater();
    const outcome = await updater.checkAndApply();
    assert.deepEqual(outcome, { kind: 'handed_over', target: '0.2.0', pid: world.launcher.starts[0]?.pid });

    // Unpacked from package/ into versions/0.2.0, marked complete.
    const dir = join(world.paths.versions, '0.2.0');
    assert.equal(JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).version, '0.2.0');
    assert.ok(existsSync(join(dir, 'bin', 'studio-worker.js')));
    assert.equal(JSON.parse(await readFile(join(dir, '.installed.json'), 'utf8')).version, '0.2.0');

    // npm ran once, in the unpacked package, with production dependencies only and no scripts.
    assert.equal(world.runner.calls.length, 1);
    const [call] = world.runner.calls;
    assert.equal(call?.command, 'npm');
    assert.deepEqual(call?.args, NPM_INSTALL_ARGV);
    assert.ok(call?.sawManifest, 'npm ran where package.json was');
    assert.ok(call?.cwd.startsWith(join(world.paths.versions, '.staging-0.2.0-')), call?.cwd);
    assert.ok(existsSync(join(dir, 'node_modules', 'left-pad')), 'what npm installed moved along');

    // Switched, then this daemon stopped before the new one started with our version in its env.
    assert.deepEqual(await world.pointer(), { version: '0.2.0', previous: '0.1.0', switchedAt: (await world.pointer())?.switchedAt });
    assert.deepEqual(world.events, ['stop 0.1.0', 'start 0.2.0']);
    assert.deepEqual(world.launcher.starts.map(({ entry, env }) => ({ entry, env })), [{ entry: join(dir, 'bin', 'studio-worker.js'), env: { STUDIO_WORKER_UPDATED_FROM: '0.1.0' } }]);
    assert.deepEqual(world.launcher.detached, [world.launcher.starts[0]?.pid], 'the new version runs on after we exit');
    assert.equal(await updater.handoff, 0);
    assert.equal(world.gate.busy, true, 'the old daemon never takes a job again');

    // Only the metadata and the one tarball were fetched, with our User-Agent.
    assert.deepEqual(world.feed.requests.map((request) => request.path), ['/studio-worker', '/tarballs/studio-worker-0.2.0.tgz']);
    for (const request of world.feed.requests) assert.equal(request.headers['user-agent'], 'studio-worker/0.1.0');
    assert.deepEqual(await readdir(world.paths.downloads), [], 'the archive was removed once unpacked');
    const messages = world.logs.messages();
    assert.ok(messages.includes('update available 0.1.0 -> 0.2.0; applying'), messages.join('\n'));
    assert.ok(messages.some((message) => message.startsWith('0.2.0 is running (pid')));
    assert.ok(world.logs.lines.filter((line) => line.level >= 30).every((line) => line.op === 'auto_update'));
  });

  it('takes prereleases only when auto_update_prerelease is on', async () => {
    world.feed.npm([{ version: '0.2.0-beta.1', tarball: pkg('0.2.0-beta.1') }], { latest: '0.1.0' });
    assert.deepEqual(await world.updater().checkAndApply(), { kind: 'up_to_date', current: '0.1.0' });
    assert.ok(world.logs.messages().includes('up to date at 0.1.0'));
    assert.deepEqual(world.feed.tarballRequests(), []);
    world.settings.prerelease = true;
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind === 'handed_over' && outcome.target, '0.2.0-beta.1');
    assert.ok(world.logs.messages().includes('update available 0.1.0 -> 0.2.0-beta.1 (prerelease); applying'));
  });

  it('skips the tick while the worker is busy, without touching the feed', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    const release = world.gate.tryAcquire();
    assert.ok(release);
    const updater = world.updater({ tickMs: 60_000 });
    assert.deepEqual(await updater.tick(), { kind: 'waiting' });
    assert.deepEqual(await updater.tick(), { kind: 'busy' });
    assert.ok(world.logs.messages().includes('skipping check: worker is busy on a job'));
    assert.deepEqual(world.feed.requests, []);
    release();
    await assertNothingSwitched();
    // The time already waited counts: the first free tick checks.
    assert.equal((await updater.tick()).kind, 'handed_over');
  });

  it('skips applying when a job takes the gate between the check and the apply', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    let asked = 0;
    // Free when the tick looks, taken by a job by the time the update wants it.
    const gate = { busy: false, tryAcquire: () => (asked++, null) };
    assert.deepEqual(await world.updater({ gate }).checkAndApply(), { kind: 'busy', available: '0.2.0' });
    assert.equal(asked, 1);
    assert.ok(world.logs.messages().includes('update available 0.1.0 -> 0.2.0; skipping: worker is busy'));
    assert.deepEqual(world.feed.tarballRequests(), []);
    await assertNothingSwitched();
  });

  it('refuses an archive whose sha512 does not match the registry integrity; nothing is switched', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0'), integrity: sha512Integrity(pkg('0.2.0', { dependencies: { evil: '1.0.0' } })) }]);
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind, 'failed');
    assert.equal(outcome.kind === 'failed' && outcome.error.code, 'integrity_mismatch');
    assert.equal(world.feed.tarballRequests().length, 1);
    assert.deepEqual(world.runner.calls, []);
    await assertNothingSwitched();
    const line = world.logs.lines.find((entry) => entry.msg.startsWith('update failed:'));
    assert.equal(line?.level, 50, 'a tampered archive is an error');
    assert.match(line?.msg ?? '', /sha512.*refusing to install it.*still running 0\.1\.0$/s);
  });

  it('refuses an archive whose sha256 (static feed) does not match; nothing is switched', async () => {
    const tarball = pkg('0.2.0');
    world.feed.file('/mirror/studio-worker-0.2.0.tgz', tarball);
    world.feed.json('/feed.json', { versions: [{ version: '0.2.0', url: 'mirror/studio-worker-0.2.0.tgz', sha256: sha256Hex(Buffer.from('not it')) }] });
    world.settings.feed = world.feed.url('/feed.json');
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind === 'failed' && outcome.error.code, 'integrity_mismatch');
    assert.deepEqual(world.runner.calls, []);
    await assertNothingSwitched();
  });

  it('installs from a static feed whose sha256 sits next to the archive', async () => {
    const tarball = pkg('0.2.0');
    world.feed.file('/mirror/studio-worker-0.2.0.tgz', tarball);
    world.feed.file('/mirror/studio-worker-0.2.0.tgz.sha256', `${sha256Hex(tarball)}  studio-worker-0.2.0.tgz\n`);
    world.feed.json('/feed.json', { versions: [{ version: '0.2.0', url: 'mirror/studio-worker-0.2.0.tgz' }] });
    world.settings.feed = world.feed.url('/feed.json');
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind, 'handed_over');
    assert.deepEqual(world.feed.requests.map((request) => request.path), ['/feed.json', '/mirror/studio-worker-0.2.0.tgz.sha256', '/mirror/studio-worker-0.2.0.tgz']);
  });

  it('rolls back when the new version crashes: old pointer, old version restarted, bad version remembered', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    world.launcher.behaviourOf = (version) => (version === '0.2.0' ? 'crash' : 'healthy');
    const updater = world.updater();
    const outcome = await updater.checkAndApply();
    assert.deepEqual(outcome, { kind: 'rolled_back', target: '0.2.0', reason: 'exited with code 3 before it reported healthy', restarted: true });
    assert.equal((await world.pointer())?.version, '0.1.0');
    assert.deepEqual(world.events, ['stop 0.1.0', 'start 0.2.0', 'start 0.1.0']);
    assert.deepEqual(world.launcher.starts[1], { entry: world.previousEntry, env: { STUDIO_WORKER_ROLLED_BACK_FROM: '0.2.0' }, pid: world.launcher.starts[1]?.pid });
    assert.deepEqual(world.launcher.detached, [world.launcher.starts[1]?.pid]);
    assert.equal((await world.badVersions())['0.2.0']?.reason, 'exited with code 3 before it reported healthy');
    assert.equal(await updater.handoff, 0);
    assert.ok(world.logs.messages().some((message) => message === 'update failed: 0.2.0 exited with code 3 before it reported healthy; rolling back to 0.1.0'));

    // The restarted 0.1.0 (a new process, so a free gate) never tries 0.2.0 again…
    const restarted = world.updater({ gate: new JobGate() });
    assert.deepEqual(await restarted.checkAndApply(), { kind: 'up_to_date', current: '0.1.0' });
    assert.equal(world.feed.tarballRequests().length, 1);
    // …until a newer version appears.
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }, { version: '0.2.1', tarball: pkg('0.2.1') }]);
    world.launcher.behaviourOf = () => 'healthy';
    const next = await restarted.checkAndApply();
    assert.equal(next.kind === 'handed_over' && next.target, '0.2.1');
  });

  it('rolls back when the new version never reports healthy, and stops it', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    world.launcher.behaviourOf = (version) => (version === '0.2.0' ? 'hang' : 'healthy');
    const outcome = await world.updater({ handover: { healthTimeoutMs: 300 } }).checkAndApply();
    assert.equal(outcome.kind, 'rolled_back');
    assert.match(outcome.kind === 'rolled_back' ? outcome.reason : '', /^did not report healthy \(.*started\.json\) within 0\.3 s$/);
    assert.deepEqual(world.launcher.stopped, [world.launcher.starts[0]?.pid], 'the hung new version was stopped');
    assert.equal((await world.pointer())?.version, '0.1.0');
    assert.ok('0.2.0' in (await world.badVersions()));
  });

  it('a version restarted after a rollback skips the failed one even if bad-versions.json is lost', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    const outcome = await world.updater({ env: { STUDIO_WORKER_ROLLED_BACK_FROM: '0.2.0' } }).checkAndApply();
    assert.deepEqual(outcome, { kind: 'up_to_date', current: '0.1.0' });
  });

  it('exits 1 (no crash loop) when neither the new nor the old version starts', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    world.launcher.behaviourOf = () => 'crash';
    const updater = world.updater();
    const outcome = await updater.checkAndApply();
    assert.deepEqual(outcome, { kind: 'rolled_back', target: '0.2.0', reason: 'exited with code 3 before it reported healthy', restarted: false });
    assert.equal(await updater.handoff, 1);
    assert.equal(world.launcher.starts.length, 2, 'one try each, no loop');
    assert.ok(world.logs.messages().some((message) => message.includes('start studio-worker by hand')));
  });

  it('keeps running when npm fails, and says why', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    world.runner.result = { code: 1, stderr: 'npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/left-pad\n' };
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind === 'failed' && outcome.error.code, 'install_failed');
    assert.match(outcome.kind === 'failed' ? outcome.error.message : '', /npm install for 0\.2\.0 exited with code 1:\nnpm ERR! code E404/);
    await assertNothingSwitched();
  });

  it('refuses archives that are not what the feed says they are', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.1.9') }]);
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind === 'failed' && outcome.error.code, 'unsafe_archive');
    assert.match(outcome.kind === 'failed' ? outcome.error.message : '', /offered as studio-worker 0\.2\.0 holds studio-worker 0\.1\.9/);
    await assertNothingSwitched();
  });

  it('refuses an archive with path traversal before anything is installed', async () => {
    const evil = tarGz([...fakeWorkerPackage('0.2.0', 'healthy'), { name: 'package/../../../escaped.js', data: 'pwned' }]);
    world.feed.npm([{ version: '0.2.0', tarball: evil }]);
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind === 'failed' && outcome.error.code, 'unsafe_archive');
    assert.equal(existsSync(join(world.paths.versions, '..', 'escaped.js')), false);
    assert.equal(existsSync(join(world.dataDir, 'escaped.js')), false);
    assert.deepEqual(world.runner.calls, []);
    await assertNothingSwitched();
  });

  it('only announces an update in a git checkout', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    const checkout = join(world.dir, 'checkout');
    await mkdir(join(checkout, '.git'), { recursive: true });
    await mkdir(join(checkout, 'packages', 'worker'), { recursive: true });
    const outcome = await world.updater({ packageRoot: join(checkout, 'packages', 'worker') }).checkAndApply();
    assert.equal(outcome.kind, 'not_updatable');
    assert.ok(world.logs.messages().includes(`update available 0.1.0 -> 0.2.0; not applying: this worker runs from a git checkout (${checkout}); update it with git pull and npm install`));
    await assertNothingSwitched();
  });

  it('logs a failed check and keeps going', async () => {
    world.feed.status('/studio-worker', 500);
    const outcome = await world.updater().checkAndApply();
    assert.equal(outcome.kind === 'check_failed' && outcome.error.code, 'http_status');
    assert.ok(world.logs.messages().includes(`check failed: the release feed ${world.feed.url('/studio-worker')} answered 500 Internal Server Error`));
  });

  it('checks once the interval has added up, and not at all while disabled', async () => {
    world.feed.npm([{ version: '0.1.0', tarball: pkg('0.1.0') }]);
    const updater = world.updater({ tickMs: 60_000 });
    world.settings.enabled = false;
    assert.deepEqual(await updater.tick(), { kind: 'disabled' });
    assert.deepEqual(await updater.tick(), { kind: 'disabled' });
    world.settings.enabled = true;
    assert.deepEqual(await updater.tick(), { kind: 'waiting' });
    assert.equal(world.feed.requests.length, 0);
    assert.deepEqual(await updater.tick(), { kind: 'up_to_date', current: '0.1.0' });
    assert.deepEqual(await updater.tick(), { kind: 'waiting' });
    assert.equal(world.feed.requests.length, 1);
  });

  it('stop() aborts an install in flight and gives the gate back', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: pkg('0.2.0') }]);
    const updater = world.updater();
    let started!: () => void;
    const npmStarted = new Promise<void>((resolve) => (started = resolve));
    world.runner.behaviour = (options) =>
      new Promise((resolve) => {
        started();
        options.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    world.runner.result = { code: null, signal: 'SIGTERM' };
    const running = updater.checkAndApply();
    await npmStarted;
    assert.equal(world.gate.busy, true, 'the gate is held while installing');
    updater.stop();
    assert.deepEqual(await running, { kind: 'stopped' });
    await assertNothingSwitched();
    assert.deepEqual((await readdir(world.paths.versions)).filter((name) => name.startsWith('.staging-')), []);
  });
});
