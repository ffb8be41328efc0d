import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '@studio-worker/log';
import { EngineFailure } from '../../src/engines/engine.ts';
import { createSdCppEngine, installRelease, RELEASE_MARKER, ReleaseError, type SdCppEngineConfigInput } from '../../src/engines/sd-cpp/index.ts';
import { tarGzArchive, zipArchive, type ArchiveFile } from './fakes/sd-archives.ts';
import { FAKE_SD_CLI, imageJob, readRecord, recordingContext, scratch, serveFiles, zImageFiles } from './fakes/sd-test-kit.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An executable shell wrapper around the fake sd-cli: what a real binary looks like on disk. */
function wrapperScript(extra = ''): string {
  return `#!/bin/sh\n${extra}exec "${process.execPath}" "${FAKE_SD_CLI}" "$@"\n`;
}

async function writeExecutable(path: string, text: string): Promise<string> {
  await writeFile(path, text);
  await chmod(path, 0o755);
  return path;
}

async function root() {
  const made = await scratch('sdcpp-setup-');
  cleanups.push(made.cleanup);
  return made.dir;
}

function engineFor(modelsRoot: string, config: Partial<SdCppEngineConfigInput>, env: NodeJS.ProcessEnv = {}) {
  const engine = createSdCppEngine({ vulkanCheck: false, ...config }, { log: silentLogger, modelsRoot, env, platform: 'linux' });
  cleanups.push(() => engine.close());
  return engine;
}

function reasonOf(probe: Awaited<ReturnType<ReturnType<typeof engineFor>['probe']>>): string {
  assert.equal(probe.available, false, `expected unavailable, got ${JSON.stringify(probe)}`);
  return probe.available ? '' : probe.reason;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('sd-cpp: finding sd-cli (probe)', () => {
  test('nothing anywhere: unavailable, and the reason says every way to fix it', async () => {
    const dir = await root();
    const reason = reasonOf(await engineFor(join(dir, 'models'), {}, { PATH: dir }).probe());
    assert.match(reason, /^sd-cli not found: set \[engines\.sd-cpp\] sd_cli = "\/path\/to\/sd-cli", set STUDIO_WORKER_SD_CLI, put it in .*\/models\/bin, or put it on PATH/);
    assert.match(reason, /release_url \+ release_sha256/);
  });

  test('a configured path that does not exist or is not executable says so, with the fix', async () => {
    const dir = await root();
    assert.match(reasonOf(await engineFor(dir, { sdCli: join(dir, 'nope', 'sd-cli') }).probe()), /sd-cli ".*\/nope\/sd-cli" \(from \[engines\.sd-cpp\] sd_cli\) does not exist/);
    const plain = join(dir, 'sd-cli');
    await writeFile(plain, wrapperScript());
    await chmod(plain, 0o644);
    assert.match(reasonOf(await engineFor(dir, { sdCli: plain }).probe()), /is not executable: run chmod \+x ".*\/sd-cli"/);
  });

  test('found in order: the table, $STUDIO_WORKER_SD_CLI, <models_root>/bin, PATH', async () => {
    const dir = await root();
    const modelsRoot = join(dir, 'models');
    for (const sub of ['table', 'env', 'models/bin', 'path']) await mkdir(join(dir, sub), { recursive: true });
    const table = await writeExecutable(join(dir, 'table', 'sd-cli'), wrapperScript());
    const fromEnv = await writeExecutable(join(dir, 'env', 'sd-cli'), wrapperScript());
    const inBin = await writeExecutable(join(modelsRoot, 'bin', 'sd-cli'), wrapperScript());
    const onPath = await writeExecutable(join(dir, 'path', 'sd-cli'), wrapperScript());
    const env = { PATH: join(dir, 'path'), STUDIO_WORKER_SD_CLI: fromEnv };
    const detail = async (config: Partial<SdCppEngineConfigInput>, environment: NodeJS.ProcessEnv) => {
      const probe = await engineFor(modelsRoot, config, environment).probe();
      assert.ok(probe.available, JSON.stringify(probe));
      return probe.detail;
    };
    assert.equal(await detail({ sdCli: table }, env), `sd-cli at ${table} (per-job; build master-fake-0000000, commit 0000000)`);
    assert.equal(await detail({}, env), `sd-cli at ${fromEnv} (per-job; build master-fake-0000000, commit 0000000)`);
    assert.equal(await detail({}, { PATH: env.PATH }), `sd-cli at ${inBin} (per-job; build master-fake-0000000, commit 0000000)`);
    const bare = await engineFor(join(dir, 'bare-models'), {}, { PATH: env.PATH }).probe();
    assert.ok(bare.available);
    assert.equal(bare.detail, `sd-cli at ${onPath} (per-job; build master-fake-0000000, commit 0000000)`);
  });
});

describe('sd-cpp: Vulkan preflight (Linux)', () => {
  async function vulkanBuild(dir: string) {
    // A dynamically linked Vulkan build names its loader among its needed libraries.
    return writeExecutable(join(dir, 'sd-cli'), wrapperScript('# NEEDED libvulkan.so.1\n'));
  }

  test('a Vulkan build without libvulkan.so.1: unavailable, with the apt remedy; run() refuses with engine_unavailable', async () => {
    const dir = await root();
    const sdCli = await vulkanBuild(dir);
    const libs = join(dir, 'empty-libs');
    await mkdir(libs);
    const engine = engineFor(join(dir, 'models'), { sdCli, vulkanCheck: true, vulkanLibraryDirs: [libs] });
    const reason = reasonOf(await engine.probe());
    assert.match(reason, /is a Vulkan build of sd\.cpp, but the Vulkan loader libvulkan\.so\.1 was not found \(looked in .*empty-libs\)/);
    assert.match(reason, /sudo apt install libvulkan1/);
    assert.match(reason, /vulkan_check = false/);

    const files = await zImageFiles(join(dir, 'models'));
    await mkdir(join(dir, 'work'));
    try {
      await engine.run(imageJob({ prompt: 'x' }, files), recordingContext(join(dir, 'work')).ctx);
      assert.fail('ran without a Vulkan loader');
    } catch (error) {
      assert.ok(error instanceof EngineFailure);
      assert.equal(error.code, 'engine_unavailable');
      assert.equal(error.retryable, true);
    }
    assert.equal(existsSync(join(dir, 'work', 'argv.json')), false);
  });

  test('the loader present in a library dir: available', async () => {
    const dir = await root();
    const sdCli = await vulkanBuild(dir);
    const libs = join(dir, 'libs');
    await mkdir(libs);
    await writeFile(join(libs, 'libvulkan.so.1'), 'ELF');
    assert.equal((await engineFor(dir, { sdCli, vulkanCheck: true, vulkanLibraryDirs: [join(dir, 'empty'), libs] }).probe()).available, true);
  });

  test('vulkan_check = false skips it; a non-Vulkan build and non-Linux platforms never need it', async () => {
    const dir = await root();
    const sdCli = await vulkanBuild(dir);
    const libs = join(dir, 'empty-libs');
    await mkdir(libs);
    assert.equal((await engineFor(dir, { sdCli, vulkanCheck: false, vulkanLibraryDirs: [libs] }).probe()).available, true);
    const cpu = await writeExecutable(join(dir, 'sd-cli-cpu'), wrapperScript());
    assert.equal((await engineFor(dir, { sdCli: cpu, vulkanCheck: true, vulkanLibraryDirs: [libs] }).probe()).available, true);
    const mac = createSdCppEngine({ sdCli, vulkanLibraryDirs: [libs] }, { log: silentLogger, modelsRoot: dir, env: {}, platform: 'darwin' });
    assert.equal((await mac.probe()).available, true);
  });

  test('a libggml-vulkan library next to the program marks a Vulkan build too', async () => {
    const dir = await root();
    const sdCli = await writeExecutable(join(dir, 'sd-cli'), wrapperScript());
    await writeFile(join(dir, 'libggml-vulkan.so'), 'ELF');
    const libs = join(dir, 'empty-libs');
    await mkdir(libs);
    assert.match(reasonOf(await engineFor(dir, { sdCli, vulkanCheck: true, vulkanLibraryDirs: [libs] }).probe()), /Vulkan build/);
  });
});

describe('sd-cpp: pinned release download', () => {
  const releaseFiles = (): ArchiveFile[] => [
    { name: 'sd-master-fake-bin-Linux-x86_64/', directory: true },
    { name: 'sd-master-fake-bin-Linux-x86_64/sd-cli', data: wrapperScript() },
    { name: 'sd-master-fake-bin-Linux-x86_64/libstable-diffusion.so', data: Buffer.alloc(2048, 1), mode: 0o644 },
    { name: 'sd-master-fake-bin-Linux-x86_64/libstable-diffusion.so.1', symlink: 'libstable-diffusion.so' },
    { name: '../evil', data: 'zip-slip' },
    { name: '/etc/absolute-evil', data: 'zip-slip' },
    { name: 'escape-link', symlink: '../../etc/passwd' },
  ];

  for (const [kind, build] of [['zip', zipArchive], ['tar.gz', tarGzArchive]] as const) {
    test(`a good ${kind} release is verified, extracted flat into <models_root>/bin (paths like ../evil flattened), and used`, async () => {
      const dir = await root();
      const modelsRoot = join(dir, 'models');
      const archive = build(releaseFiles());
      const server = await serveFiles({ [`/release.${kind}`]: { body: archive } });
      cleanups.push(server.close);
      const engine = engineFor(modelsRoot, { releaseUrl: `${server.url}/release.${kind}`, releaseSha256: sha256(archive).toUpperCase() }, { PATH: dir });

      // The first probe starts the install in the background and says so.
      assert.match(reasonOf(await engine.probe()), /^installing the pinned sd\.cpp release from http:\/\/127\.0\.0\.1:\d+\/release\./);
      const installed = await engine.installRelease();
      const bin = join(modelsRoot, 'bin');
      assert.deepEqual(installed.files, ['evil', 'absolute-evil', 'libstable-diffusion.so', 'libstable-diffusion.so.1', 'sd-cli'].sort());
      assert.deepEqual(readdirSync(bin).sort(), [RELEASE_MARKER, 'absolute-evil', 'evil', 'libstable-diffusion.so', 'libstable-diffusion.so.1', 'sd-cli'].sort());
      assert.equal(existsSync(join(dir, 'evil')), false, 'nothing escaped the bin directory');
      assert.equal(existsSync(join(modelsRoot, 'evil')), false);
      assert.equal(statSync(join(bin, 'sd-cli')).mode & 0o111, 0o111, 'sd-cli is executable');
      assert.equal(readFileSync(join(bin, 'libstable-diffusion.so.1')).length, 2048, 'the plain-name symlink resolves inside bin');
      assert.equal(server.hits.length, 1);

      const probe = await engine.probe();
      assert.ok(probe.available, JSON.stringify(probe));
      assert.equal(probe.detail, `sd-cli at ${join(bin, 'sd-cli')} (per-job; build master-fake-0000000, commit 0000000)`);
      const files = await zImageFiles(modelsRoot);
      const workDir = join(dir, 'work');
      await mkdir(workDir);
      const result = await engine.run(imageJob({ prompt: 'from the release', width: 32, height: 32 }, files), recordingContext(workDir).ctx);
      assert.equal(result.type, 'file');
      assert.equal(readRecord(workDir).env.LD_LIBRARY_PATH?.split(':')[0], bin, 'the release directory is on the library path');

      // Already installed: a new engine (a restart) does not download again.
      const again = engineFor(modelsRoot, { releaseUrl: `${server.url}/release.${kind}`, releaseSha256: sha256(archive) }, { PATH: dir });
      assert.equal((await again.probe()).available, true);
      assert.equal(server.hits.length, 1);
    });
  }

  test('a wrong sha256 is refused: nothing is extracted, and the probe says why', async () => {
    const dir = await root();
    const modelsRoot = join(dir, 'models');
    const archive = zipArchive(releaseFiles());
    const server = await serveFiles({ '/release.zip': { body: archive } });
    cleanups.push(server.close);
    const wrong = 'ab'.repeat(32);
    const engine = engineFor(modelsRoot, { releaseUrl: `${server.url}/release.zip`, releaseSha256: wrong }, { PATH: dir });
    await assert.rejects(engine.installRelease(), (error: unknown) => {
      assert.ok(error instanceof ReleaseError);
      assert.match(error.message, new RegExp(`has sha256 ${sha256(archive)}, but release_sha256 says ${wrong}: refusing to install it`));
      return true;
    });
    assert.deepEqual(readdirSync(join(modelsRoot, 'bin')), [], 'no file extracted, no partial download left');
    assert.match(reasonOf(await engine.probe()), /^installing the pinned sd\.cpp release failed: the sd\.cpp release at .* has sha256/);
  });

  test('only https (or loopback http) release URLs are fetched', async () => {
    const dir = await root();
    await assert.rejects(installRelease(join(dir, 'bin'), { url: 'http://releases.example/sd.zip', sha256: 'ab'.repeat(32) }, { log: silentLogger }), /release_url must be https/);
    assert.equal(existsSync(join(dir, 'bin', 'sd-cli')), false);
  });

  test('a table path wins over the release: nothing is downloaded', async () => {
    const dir = await root();
    const sdCli = await writeExecutable(join(dir, 'sd-cli'), wrapperScript());
    const server = await serveFiles({});
    cleanups.push(server.close);
    const engine = engineFor(join(dir, 'models'), { sdCli, releaseUrl: `${server.url}/release.zip`, releaseSha256: 'ab'.repeat(32) });
    assert.equal((await engine.probe()).available, true);
    assert.deepEqual(server.hits, []);
  });
});
