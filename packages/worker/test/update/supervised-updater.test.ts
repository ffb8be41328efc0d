import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { readPending, writePending } from '../../src/update/pending.ts';
import { detectSupervisor, EXIT_RESTART } from '../../src/update/supervision.ts';
import { fakeWorkerPackage, tarGz } from './helpers/tarball.ts';
import { installFakeVersion, makeWorld, type World } from './helpers/world.ts';

describe('auto-updater under a service manager (supervised handover)', () => {
  let world: World;
  beforeEach(async () => {
    world = await makeWorld();
  });
  afterEach(async () => {
    await world.cleanup();
  });

  it('records the switch as pending, switches, stops, and asks for a restart instead of starting anything', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: tarGz(fakeWorkerPackage('0.2.0', 'healthy')) }]);
    const updater = world.updater({ handover: { supervisor: 'systemd' } });
    const outcome = await updater.checkAndApply();
    assert.deepEqual(outcome, { kind: 'restart_requested', target: '0.2.0', supervisor: 'systemd', exitCode: EXIT_RESTART });
    const pending = await readPending(world.paths.pending);
    assert.deepEqual(pending && { version: pending.version, previous: pending.previous, startedAttempts: pending.startedAttempts }, { version: '0.2.0', previous: '0.1.0', startedAttempts: 0 });
    assert.equal((await world.pointer())?.version, '0.2.0');
    assert.deepEqual(world.events, ['stop 0.1.0'], 'stopped, and nothing started: systemd would kill it with our cgroup');
    assert.deepEqual(world.launcher.starts, []);
    assert.equal(await updater.handoff, EXIT_RESTART);
    assert.equal(world.gate.busy, true, 'the old daemon never takes a job again');
    assert.ok(world.logs.messages().includes(`0.2.0 installed; restart pending (stopping 0.1.0); exiting with ${EXIT_RESTART} so that systemd starts 0.2.0`), world.logs.messages().join('\n'));
  });

  it('leaves nothing pending when the switch fails, and keeps running', async () => {
    world.feed.npm([{ version: '0.2.0', tarball: tarGz(fakeWorkerPackage('0.2.0', 'healthy')) }]);
    world.runner.result = { code: 1, stderr: 'npm ERR! network' };
    const updater = world.updater({ handover: { supervisor: 'systemd' } });
    const outcome = await updater.checkAndApply();
    assert.equal(outcome.kind, 'failed');
    assert.equal(existsSync(world.paths.pending), false);
    assert.equal((await world.pointer())?.version, '0.1.0');
    assert.equal(updater.handoff, null);
    assert.equal(world.gate.busy, false);
  });

  it('a version started for a pending update confirms it once up for the settle time, and prunes', async () => {
    await installFakeVersion(world.dataDir, '0.0.9', 'healthy');
    await installFakeVersion(world.dataDir, '0.0.8', 'healthy');
    await writePending(world.paths.pending, { version: '0.1.0', previous: '0.0.9', startedAttempts: 1, startedPid: process.pid, switchedAt: '' });
    const updater = world.updater({ handover: { settleMs: 50 } });
    updater.start();
    await world.logs.waitFor((message) => message === '0.1.0 is healthy after the update from 0.0.9; update confirmed');
    await world.logs.waitFor((message) => message === 'removed old versions: 0.0.8');
    updater.stop();
    assert.equal(existsSync(world.paths.pending), false);
    assert.equal(existsSync(`${world.paths.versions}/0.0.9`), true, 'the previous version stays for a rollback');
    assert.equal(existsSync(`${world.paths.versions}/0.0.8`), false, 'older ones go');
  });

  it('does not confirm a pending update of another version, nor after a stop', async () => {
    await writePending(world.paths.pending, { version: '0.2.0', previous: '0.1.0', startedAttempts: 1, switchedAt: '' });
    assert.equal(await world.updater().confirmStart(), false);
    assert.equal((await readPending(world.paths.pending))?.version, '0.2.0');
    const stopped = world.updater({ currentVersion: '0.2.0' });
    stopped.stop();
    assert.equal(await stopped.confirmStart(), false);
    assert.equal(await world.updater({ currentVersion: '0.2.0' }).confirmStart(), true);
    assert.equal(existsSync(world.paths.pending), false);
  });

  it('checks once soon after the start when firstCheckMs is set', async () => {
    world.feed.npm([{ version: '0.1.0', tarball: tarGz(fakeWorkerPackage('0.1.0', 'healthy')) }]);
    const updater = world.updater({ firstCheckMs: 10 });
    updater.start();
    await world.logs.waitFor((message) => message === 'up to date at 0.1.0');
    updater.stop();
    assert.deepEqual(world.feed.requests.map((request) => request.path), ['/studio-worker']);
  });
});

describe('detectSupervisor', () => {
  it('takes STUDIO_WORKER_SUPERVISED when set (systemd, launchd; anything else turns it off)', () => {
    assert.equal(detectSupervisor({ env: { STUDIO_WORKER_SUPERVISED: 'systemd' } }), 'systemd');
    assert.equal(detectSupervisor({ env: { STUDIO_WORKER_SUPERVISED: 'launchd' }, platform: 'darwin' }), 'launchd');
    assert.equal(detectSupervisor({ env: { STUDIO_WORKER_SUPERVISED: 'none', INVOCATION_ID: 'x' }, platform: 'linux', parentName: () => 'systemd' }), null);
  });

  it('recognises a systemd unit by INVOCATION_ID only when systemd is the parent (not a shell that inherited it)', () => {
    assert.equal(detectSupervisor({ env: { INVOCATION_ID: 'abc' }, platform: 'linux', parentName: () => 'systemd' }), 'systemd');
    assert.equal(detectSupervisor({ env: { INVOCATION_ID: 'abc' }, platform: 'linux', parentName: () => 'bash' }), null);
    assert.equal(detectSupervisor({ env: {}, platform: 'linux', parentName: () => 'systemd' }), null);
    assert.equal(detectSupervisor({ env: { INVOCATION_ID: 'abc' }, platform: 'darwin', parentName: () => 'systemd' }), null);
  });
});
