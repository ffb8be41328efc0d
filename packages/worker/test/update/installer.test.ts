import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { npmEnvironment, spawnRunner } from '../../src/update/command-runner.ts';
import { UpdateError } from '../../src/update/errors.ts';
import { detectInstallKind, VersionsInstaller } from '../../src/update/installer.ts';
import { updatePaths } from '../../src/update/paths.ts';
import { readPointer } from '../../src/update/pointer.ts';
import { captureLog } from './helpers/log-capture.ts';
import { fakeWorkerPackage, tarGz } from './helpers/tarball.ts';
import { FakeRunner } from './helpers/world.ts';

describe('versions installer', () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-installer-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(entries = fakeWorkerPackage('0.2.0', 'healthy')) {
    const root = join(dir, `case-${n++}`);
    const dataDir = join(root, 'data');
    const archive = join(root, 'archive.tgz');
    await mkdir(root, { recursive: true });
    await writeFile(archive, tarGz(entries));
    const runner = new FakeRunner();
    const installer = new VersionsInstaller({ dataDir, currentVersion: '0.1.0', runner, npm: { command: '/opt/node', prefixArgs: ['/opt/npm-cli.js'] }, env: { PATH: '/usr/bin' }, log: captureLog().log });
    return { root, dataDir, archive, runner, installer, paths: updatePaths(dataDir) };
  }

  it('uses npm ci when the package ships a lockfile, with the npm that runs beside our Node', async () => {
    const { archive, runner, installer } = await setup([...fakeWorkerPackage('0.2.0', 'healthy'), { name: 'package/npm-shrinkwrap.json', data: '{}' }]);
    await installer.install('0.2.0', archive);
    assert.deepEqual(runner.calls.map(({ command, args, env }) => ({ command, args, env })), [
      { command: '/opt/node', args: ['/opt/npm-cli.js', 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], env: { PATH: '/usr/bin' } },
    ]);
  });

  it("drops the release's devDependencies before npm install (npm would resolve unpublished workspace packages)", async () => {
    const [manifestEntry, ...rest] = fakeWorkerPackage('0.2.0', 'healthy');
    const manifest = { ...JSON.parse(String(manifestEntry!.data)), devDependencies: { '@studio-worker/log': '^0.1.0' } };
    const { archive, runner, installer, paths } = await setup([{ name: 'package/package.json', data: JSON.stringify(manifest) }, ...rest]);
    let seen: Record<string, unknown> | undefined;
    runner.behaviour = async ({ cwd }) => {
      seen = JSON.parse(await readFile(join(cwd, 'package.json'), 'utf8')) as Record<string, unknown>;
    };
    await installer.install('0.2.0', archive);
    assert.equal(runner.calls[0]?.args[1], 'install');
    assert.deepEqual(seen?.dependencies, { 'left-pad': '^1.3.0' });
    assert.equal('devDependencies' in (seen ?? {}), false);
    const installed = JSON.parse(await readFile(join(paths.versions, '0.2.0', 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(installed.version, '0.2.0');
  });

  it('skips npm for a package without dependencies, and reuses a complete install', async () => {
    const { archive, runner, installer, paths } = await setup(fakeWorkerPackage('0.2.0', 'healthy', { dependencies: {} }));
    const first = await installer.install('0.2.0', archive);
    assert.equal(first.entry, join(paths.versions, '0.2.0', 'bin', 'studio-worker.js'));
    assert.deepEqual(runner.calls, []);
    await rm(archive);
    const again = await installer.install('0.2.0', archive);
    assert.deepEqual(again, first, 'the archive was not needed a second time');
  });

  it('refuses a package whose bin is missing or points outside it', async () => {
    const missing = await setup([{ name: 'package/package.json', data: JSON.stringify({ name: 'studio-worker', version: '0.2.0', bin: { 'studio-worker': './bin/nope.js' } }) }]);
    await assert.rejects(missing.installer.install('0.2.0', missing.archive), /the bin of 0\.2\.0 \("\.\/bin\/nope\.js"\) is not in the archive/);
    const outside = await setup([{ name: 'package/package.json', data: JSON.stringify({ name: 'studio-worker', version: '0.2.0', bin: '../../../../bin/sh' }) }]);
    await assert.rejects(outside.installer.install('0.2.0', outside.archive), /points outside its package/);
    assert.deepEqual(await readdir(outside.paths.versions).then((names) => names.filter((name) => name !== '.install.lock')), []);
  });

  it('waits its turn: another live process installing into the same data dir is reported, not trampled', async () => {
    const { archive, installer, paths } = await setup();
    await mkdir(paths.versions, { recursive: true });
    await writeFile(paths.installLock, `${process.ppid}\n`);
    await assert.rejects(installer.install('0.2.0', archive), (error: unknown) => error instanceof UpdateError && error.code === 'install_busy' && error.message.includes(`pid ${process.ppid}`));
    assert.equal(existsSync(join(paths.versions, '0.2.0')), false);
  });

  it('a single-file worker also prunes the payloads unpacked for versions no longer kept, never its own', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'studio-worker-prune-binary-'));
    try {
      const binary = join(dataDir, 'binary');
      const own = join(binary, `0.0.5-${'c'.repeat(16)}`);
      for (const name of [`0.0.9-${'a'.repeat(16)}`, `0.1.0-${'b'.repeat(16)}`, `0.1.2-${'d'.repeat(16)}`, `0.0.8-${'e'.repeat(16)}.tmp-123`]) await mkdir(join(binary, name), { recursive: true });
      await mkdir(join(own, 'dist'), { recursive: true });
      const installer = new VersionsInstaller({ dataDir, currentVersion: '0.1.0', singleFile: true, packageRoot: own, log: captureLog().log });
      const removed = await installer.prune(['0.1.2', '0.1.0']);
      assert.deepEqual(removed, [`binary/0.0.9-${'a'.repeat(16)}`]);
      // Its own (0.0.5, running), the kept ones, and an unpacking under way stay.
      assert.deepEqual((await readdir(binary)).sort(), [`0.0.5-${'c'.repeat(16)}`, `0.0.8-${'e'.repeat(16)}.tmp-123`, `0.1.0-${'b'.repeat(16)}`, `0.1.2-${'d'.repeat(16)}`]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('activates and restores the pointer, and prunes old versions and interrupted installs', async () => {
    const { archive, installer, paths } = await setup();
    await installer.install('0.2.0', archive);
    assert.equal(await installer.activate('0.2.0'), null);
    assert.equal((await readPointer(paths.current))?.previous, '0.1.0');
    for (const name of ['0.0.1', '0.1.0', '.staging-0.3.0-abcd1234']) await mkdir(join(paths.versions, name), { recursive: true });
    assert.deepEqual((await installer.prune(['0.1.0'])).sort(), ['.staging-0.3.0-abcd1234', '0.0.1']);
    assert.deepEqual((await readdir(paths.versions)).filter((name) => !name.startsWith('.install')).sort(), ['0.1.0', '0.2.0', 'current.json']);
    await installer.restore(null);
    assert.equal(await readPointer(paths.current), null);
  });

  it('tells a git checkout from an npm install and from an installed version', async () => {
    const root = join(dir, 'kinds');
    await mkdir(join(root, 'checkout', '.git'), { recursive: true });
    await mkdir(join(root, 'checkout', 'packages', 'worker'), { recursive: true });
    await mkdir(join(root, 'checkout', 'node_modules', 'studio-worker'), { recursive: true });
    await mkdir(join(root, 'data', 'versions', '0.2.0'), { recursive: true });
    const versions = join(root, 'data', 'versions');
    assert.deepEqual(await detectInstallKind(join(root, 'checkout', 'packages', 'worker'), versions), { kind: 'git', root: join(root, 'checkout') });
    assert.deepEqual(await detectInstallKind(join(root, 'checkout', 'node_modules', 'studio-worker'), versions), { kind: 'package' });
    assert.deepEqual(await detectInstallKind(join(root, 'data', 'versions', '0.2.0'), versions), { kind: 'versioned', version: '0.2.0' });
  });
});

describe('command runner', () => {
  it('runs a real process and reports its exit code and output', async () => {
    const result = await spawnRunner.run(process.execPath, ['-e', 'console.log("out"); console.error("err"); process.exit(7)'], { cwd: tmpdir() });
    assert.deepEqual(result, { code: 7, signal: null, stdout: 'out\n', stderr: 'err\n' });
  });

  it('kills a process that runs past its timeout', async () => {
    const result = await spawnRunner.run(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { cwd: tmpdir(), timeoutMs: 200 });
    assert.equal(result.code, null);
    assert.equal(result.signal, 'SIGTERM');
  });

  it('keeps the npm settings a user wants and drops what an `npm run` left behind', () => {
    const env = npmEnvironment({ PATH: '/bin', npm_config_registry: 'https://mirror.example/', npm_config_local_prefix: '/work/main', npm_lifecycle_event: 'worker', npm_package_name: 'x', NPM_CONFIG_HTTPS_PROXY: 'http://proxy:3128', HOME: '/home/u' });
    assert.deepEqual(env, { PATH: '/bin', npm_config_registry: 'https://mirror.example/', NPM_CONFIG_HTTPS_PROXY: 'http://proxy:3128', HOME: '/home/u' });
  });
});
