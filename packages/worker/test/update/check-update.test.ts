import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { checkUpdateCommand } from '../../src/cli/commands/check-update.ts';
import { captureIo } from '../helpers/capture-io.ts';
import { runCliProcess } from '../helpers/daemon-process.ts';
import { USER_AGENT } from '../../src/platform/version.ts';
import { BadVersions } from '../../src/update/bad-versions.ts';
import { updatePaths } from '../../src/update/paths.ts';
import { FakeFeed, recordingFetch } from './helpers/fake-feed.ts';
import { fakeWorkerPackage, tarGz } from './helpers/tarball.ts';

describe('studio-worker check-update', () => {
  let dir: string;
  let feed: FakeFeed;
  let recorder: ReturnType<typeof recordingFetch>;
  let packageRoot: string;
  /** The only origins a test may contact: the fake feed (and a deliberately closed one). */
  let allowed: string[];
  const tarball = tarGz(fakeWorkerPackage('0.2.0', 'healthy'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-check-update-'));
    // Not a checkout: an npm-style install, so the output is the plain one.
    packageRoot = join(dir, 'lib', 'node_modules', 'studio-worker');
    await mkdir(packageRoot, { recursive: true });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    feed = await FakeFeed.start();
    recorder = recordingFetch();
    allowed = [feed.origin];
  });
  afterEach(async () => {
    await feed.close();
    for (const url of recorder.urls) assert.ok(allowed.includes(new URL(url).origin), `unexpected request to ${url}`);
  });

  async function run(name: string, toml: string, currentVersion = '0.1.0'): Promise<{ code: number; io: ReturnType<typeof captureIo> }> {
    const configPath = join(dir, name, 'config.toml');
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(configPath, toml);
    const io = captureIo();
    const code = await checkUpdateCommand(configPath, io, { currentVersion, dataDir: join(dir, name, 'data'), packageRoot, fetch: recorder.fetch });
    return { code, io };
  }

  it('on a git checkout: says "git checkout: update with git", exits 0, and asks no feed (the real CLI, from this repository)', async () => {
    const configPath = join(dir, 'checkout', 'config.toml');
    await mkdir(join(dir, 'checkout'), { recursive: true });
    // A feed that would answer 404, as the npm registry does for an unpublished name.
    await writeFile(configPath, `auto_update_feed = "${feed.url('/not-published')}"\n`);
    const result = await runCliProcess(['check-update', '--config', configPath]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^git checkout: update with git \(git pull, then npm install\) — \//);
    assert.equal(result.stderr, '');
    assert.equal(feed.requests.length, 0, 'the feed is not asked');
  });

  it('prints "up to date: X" and exits 0 when nothing newer is there', async () => {
    feed.npm([{ version: '0.1.0', tarball }, { version: '0.0.9', tarball }], { latest: '0.1.0' });
    const { code, io } = await run('current', `auto_update_feed = "${feed.url('/studio-worker')}"\n`);
    assert.equal(code, 0);
    assert.equal(io.stdout, 'up to date: 0.1.0\n');
    assert.equal(io.stderr, '');
    assert.equal(feed.requests[0]?.headers['user-agent'], USER_AGENT);
  });

  it('prints "update available: A -> B" and exits 0, never downloading anything', async () => {
    feed.npm([{ version: '0.1.0', tarball }, { version: '0.2.0', tarball }, { version: '0.3.0', tarball, deprecated: 'do not use' }], { latest: '0.3.0' });
    const { code, io } = await run('newer', `auto_update_feed = "${feed.url('/studio-worker')}"\nauto_update_interval_secs = 600\n`);
    assert.equal(code, 0);
    assert.deepEqual(io.stdout.split('\n'), [
      'update available: 0.1.0 -> 0.2.0',
      'note: a running daemon installs it between jobs at its next check (every 600 s)',
      'note: skipping 0.3.0: deprecated: do not use',
      '',
    ]);
    assert.deepEqual(feed.tarballRequests(), []);
    assert.deepEqual(feed.requests.map((request) => request.path), ['/studio-worker']);
  });

  it('marks a prerelease, offered only with auto_update_prerelease', async () => {
    feed.npm([{ version: '0.2.0-rc.1', tarball }], { latest: '0.1.0' });
    const stable = await run('stable', `auto_update_feed = "${feed.url('/studio-worker')}"\n`);
    assert.equal(stable.io.stdout, 'up to date: 0.1.0\n');
    const opted = await run('opted', `auto_update_feed = "${feed.url('/studio-worker')}"\nauto_update_prerelease = true\nauto_update_enabled = false\n`);
    assert.equal(opted.code, 0);
    assert.equal(opted.io.stdout, 'update available: 0.1.0 -> 0.2.0-rc.1 (prerelease)\nnote: auto_update_enabled is false, so the daemon will not install it\n');
  });

  it('leaves out a version that failed to start here, and says so', async () => {
    feed.npm([{ version: '0.2.0', tarball }]);
    await new BadVersions(updatePaths(join(dir, 'bad', 'data')).badVersions).record('0.2.0', 'exited with code 1 before it reported healthy');
    const { code, io } = await run('bad', `auto_update_feed = "${feed.url('/studio-worker')}"\n`);
    assert.equal(code, 0);
    assert.equal(io.stdout, 'up to date: 0.1.0\nnote: skipping 0.2.0: it failed to start on this machine before\n');
  });

  it('exits 1 with the status and the URL (without credentials) when the feed fails', async () => {
    feed.status('/studio-worker', 404);
    const url = feed.url('/studio-worker').replace('http://', 'http://ci:s3cret@');
    const { code, io } = await run('missing', `auto_update_feed = "${url}"\n`);
    assert.equal(code, 1);
    assert.equal(io.stdout, '');
    assert.equal(io.stderr, `studio-worker check-update: check failed: the release feed ${feed.url('/studio-worker')} answered 404 Not Found\n`);
  });

  it('exits 1 when the feed cannot be reached or is not https', async () => {
    const closed = await FakeFeed.start();
    const closedUrl = closed.url('/studio-worker');
    allowed.push(closed.origin);
    await closed.close();
    const unreachable = await run('unreachable', `auto_update_feed = "${closedUrl}"\n`);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.io.stderr, new RegExp(`^studio-worker check-update: check failed: cannot reach the release feed ${closedUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: fetch failed`));

    const plain = await run('plain', 'auto_update_feed = "http://registry.example/studio-worker"\n');
    assert.equal(plain.code, 1);
    assert.match(plain.io.stderr, /check failed: the release feed http:\/\/registry\.example\/studio-worker uses http; updates are only fetched over https/);
    assert.equal(recorder.urls.filter((url) => url.includes('registry.example')).length, 0);
  });

  it('exits 1 on a broken config', async () => {
    const { code, io } = await run('broken', 'auto_update_interval_secs = 5\n');
    assert.equal(code, 1);
    assert.match(io.stderr, /^studio-worker check-update: .*auto_update_interval_secs/);
    assert.deepEqual(recorder.urls, []);
  });
});
