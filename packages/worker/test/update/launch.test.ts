import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { BadVersions } from '../../src/update/bad-versions.ts';
import { decideLaunch, isDaemonStart, redirectedEntry, watchPendingStart } from '../../src/update/launch.ts';
import { updatePaths } from '../../src/update/paths.ts';
import { readPending, writePending, type PendingUpdate } from '../../src/update/pending.ts';
import { readPointer, writePointer } from '../../src/update/pointer.ts';
import { ROLLED_BACK_FROM_ENV, UPDATED_FROM_ENV } from '../../src/update/started-marker.ts';
import { EXIT_RESTART } from '../../src/update/supervision.ts';
import { installFakeVersion } from './helpers/world.ts';

describe('launcher redirect (versions/current.json)', () => {
  let dir: string;
  let dataDir: string;
  let packageRoot: string;
  const point = (version: string) => writePointer(updatePaths(dataDir).current, { version, switchedAt: '' });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-launch-'));
    dataDir = join(dir, 'data');
    packageRoot = join(dir, 'lib', 'node_modules', 'studio-worker');
    await mkdir(packageRoot, { recursive: true });
    await writeFile(join(packageRoot, 'package.json'), JSON.stringify({ name: 'studio-worker', version: '0.1.0' }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the launcher\'s own install when there is no pointer', async () => {
    assert.equal(await redirectedEntry({ dataDir, packageRoot, env: {} }), null);
  });

  it('runs the version current.json names, when it is installed completely', async () => {
    const entry = await installFakeVersion(dataDir, '0.2.0', 'healthy');
    await point('0.2.0');
    assert.equal(await redirectedEntry({ dataDir, packageRoot, env: {} }), entry);
    assert.equal(await redirectedEntry({ dataDir, packageRoot, env: { STUDIO_WORKER_NO_REDIRECT: '1' } }), null);
    // The installed version's own launcher runs itself instead of redirecting to itself.
    assert.equal(await redirectedEntry({ dataDir, packageRoot: join(updatePaths(dataDir).versions, '0.2.0'), env: {} }), null);
  });

  it('ignores an interrupted install and a version older than the launcher', async () => {
    await mkdir(join(updatePaths(dataDir).versions, '0.3.0'), { recursive: true });
    await point('0.3.0');
    assert.equal(await redirectedEntry({ dataDir, packageRoot, env: {} }), null);
    await installFakeVersion(dataDir, '0.0.9', 'healthy');
    await point('0.0.9');
    assert.equal(await redirectedEntry({ dataDir, packageRoot, env: {} }), null);
  });
});

describe('launcher decision with a pending supervised update (decideLaunch)', () => {
  let dir: string;
  let dataDir: string;
  let packageRoot: string;
  let paths: ReturnType<typeof updatePaths>;
  const run = ['--config', '/c/config.toml', 'run'];
  const now = () => new Date('2030-01-02T03:04:05Z');

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-launch-pending-'));
    dataDir = join(dir, 'data');
    paths = updatePaths(dataDir);
    packageRoot = join(dir, 'lib', 'node_modules', 'studio-worker');
    await mkdir(packageRoot, { recursive: true });
    await writeFile(join(packageRoot, 'package.json'), JSON.stringify({ name: 'studio-worker', version: '0.1.0' }));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function switchedTo(version: string, pending: Partial<PendingUpdate> = {}): Promise<string> {
    const entry = await installFakeVersion(dataDir, version, 'healthy');
    await writePointer(paths.current, { version, previous: '0.1.0', switchedAt: '' });
    await writePending(paths.pending, { version, previous: '0.1.0', startedAttempts: 0, switchedAt: '', ...pending });
    return entry;
  }

  it('counts the one start of the pending version (with its pid) and runs it', async () => {
    const entry = await switchedTo('0.2.0');
    const decision = await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: 4242, now });
    assert.equal(decision.entry, entry);
    assert.deepEqual(decision.env, { [UPDATED_FROM_ENV]: '0.1.0' });
    assert.match(decision.notes.join('\n'), /starting 0\.2\.0 \(updated from 0\.1\.0\)/);
    const pending = await readPending(paths.pending);
    assert.deepEqual(pending, { version: '0.2.0', previous: '0.1.0', startedAttempts: 1, startedPid: 4242, startedAt: '2030-01-02T03:04:05.000Z', switchedAt: '' });
    assert.deepEqual(decision.verifying, pending);
  });

  it('rolls back when the counted start is gone without confirming: pointer, bad version, previous runs', async () => {
    await switchedTo('0.2.0', { startedAttempts: 1, startedPid: 4242 });
    const decision = await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: 5000, isAlive: () => false, now });
    assert.equal(decision.entry, null, 'the previous version is the launcher\'s own install');
    assert.deepEqual(decision.env, { [ROLLED_BACK_FROM_ENV]: '0.2.0' });
    assert.match(decision.notes.join('\n'), /0\.2\.0 did not report healthy .*; rolled back to 0\.1\.0; 0\.2\.0 will not be tried again/);
    assert.equal((await readPointer(paths.current))?.version, '0.1.0');
    assert.equal(await readPending(paths.pending), null);
    assert.match((await new BadVersions(paths.badVersions).load()).get('0.2.0')?.reason ?? '', /pid 4242/);
    // The next start just runs 0.1.0: one try per version, no loop.
    assert.deepEqual(await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: 5001 }), { entry: null, env: {}, notes: [] });
  });

  it('rolls back to the previous installed version (not the launcher) when that was the one running', async () => {
    const previousEntry = await installFakeVersion(dataDir, '0.1.5', 'healthy');
    await switchedTo('0.2.0', { previous: '0.1.5', startedAttempts: 1, startedPid: 4242 });
    const decision = await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: 5000, isAlive: () => false, now });
    assert.equal(decision.entry, previousEntry);
    assert.equal((await readPointer(paths.current))?.version, '0.1.5');
  });

  it('leaves a pending start that still runs alone (a second `run` by hand), and ignores other commands', async () => {
    const entry = await switchedTo('0.2.0', { startedAttempts: 1, startedPid: 4242 });
    const alive = await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: 5000, isAlive: (pid) => pid === 4242 });
    assert.deepEqual(alive, { entry, env: {}, notes: [] });
    const status = await decideLaunch({ dataDir, packageRoot, env: {}, args: ['status'], pid: 5000, isAlive: () => false });
    assert.deepEqual(status, { entry, env: {}, notes: [] });
    assert.equal((await readPending(paths.pending))?.startedAttempts, 1, 'untouched');
    assert.equal((await readPointer(paths.current))?.version, '0.2.0');
  });

  it('drops a pending record the pointer no longer agrees with, and one whose version cannot be started', async () => {
    await switchedTo('0.2.0');
    await writePointer(paths.current, { version: '0.1.0', switchedAt: '' });
    assert.equal((await decideLaunch({ dataDir, packageRoot, env: {}, args: run })).entry, null);
    assert.equal(await readPending(paths.pending), null);

    await writePointer(paths.current, { version: '0.3.0', switchedAt: '' });
    await writePending(paths.pending, { version: '0.3.0', previous: '0.1.0', startedAttempts: 0, switchedAt: '' });
    const decision = await decideLaunch({ dataDir, packageRoot, env: {}, args: run });
    assert.equal(decision.entry, null);
    assert.match(decision.notes.join('\n'), /cannot start 0\.3\.0 \(.*does not exist\); running this install instead/);
    assert.equal(await readPending(paths.pending), null);
  });

  it('does nothing with STUDIO_WORKER_NO_REDIRECT=1', async () => {
    await switchedTo('0.2.0');
    assert.deepEqual(await decideLaunch({ dataDir, packageRoot, env: { STUDIO_WORKER_NO_REDIRECT: '1' }, args: run }), { entry: null, env: {}, notes: [] });
    assert.equal((await readPending(paths.pending))?.startedAttempts, 0);
  });

  it('under a supervisor, exits with the restart code when the counted start does not confirm in time', async () => {
    await switchedTo('0.2.0');
    const decision = await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: process.pid });
    assert.ok(decision.verifying);
    const exits: number[] = [];
    const notes: string[] = [];
    const watch = watchPendingStart(decision.verifying, { dataDir, env: { STUDIO_WORKER_SUPERVISED: 'systemd' }, timeoutMs: 20, exit: (code) => exits.push(code), note: (line) => notes.push(line) });
    assert.equal(await watch.outcome, 'timed_out');
    assert.deepEqual(exits, [EXIT_RESTART]);
    assert.match(notes.join('\n'), /0\.2\.0 did not report healthy within 0 s of its start; exiting with 75/);
  });

  it('does not exit once the start confirmed, nor without a supervisor', async () => {
    await switchedTo('0.2.0');
    const decision = await decideLaunch({ dataDir, packageRoot, env: {}, args: run, pid: process.pid });
    assert.ok(decision.verifying);
    const exits: number[] = [];
    assert.equal(await watchPendingStart(decision.verifying, { dataDir, env: {}, timeoutMs: 1, exit: (code) => exits.push(code) }).outcome, 'unsupervised');
    await writePending(paths.pending, null);
    assert.equal(await watchPendingStart(decision.verifying, { dataDir, env: { STUDIO_WORKER_SUPERVISED: 'systemd' }, timeoutMs: 1, exit: (code) => exits.push(code) }).outcome, 'confirmed');
    assert.deepEqual(exits, []);
  });
});

describe('isDaemonStart', () => {
  it('finds the command past the global --config option', () => {
    assert.equal(isDaemonStart(['run']), true);
    assert.equal(isDaemonStart(['--config', 'run', 'status']), false);
    assert.equal(isDaemonStart(['--config', '/x/config.toml', 'run', '--foo']), true);
    assert.equal(isDaemonStart(['-V']), false);
    assert.equal(isDaemonStart(['status', 'run']), false);
  });
});
