import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { createOnnxEngine } from '../../src/engines/onnx/index.ts';
import { UpdateError } from '../../src/update/errors.ts';
import { RUNTIME_PINS } from '../../src/update/runtime-pins.ts';
import { installRuntime, locateRuntime, runtimeState, type RuntimePin } from '../../src/update/runtimes.ts';
import { pinsSource, PINS_FILE } from '../../../../scripts/pin-runtimes.ts';
import { cleanWorkerEnv } from '../helpers/worker-process.ts';
import { pollUntil } from '../helpers/wait.ts';
import { REPO_ROOT, WORKER_DIR } from '../release/helpers/package.ts';

const run = promisify(execFile);
const BIN = join(WORKER_DIR, 'bin', 'studio-worker.js');

/**
 * Engine runtimes on demand, with the real npm against npm's cache (`npm_config_offline`): the
 * packages the repository's own install put there, so no test reaches the registry, and the same
 * `npm ci` a user's worker runs against it.
 */
describe('engine runtimes installed on demand', () => {
  let dir: string;
  const offline = { npm_config_offline: 'true' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-runtimes-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('pins the tree package-lock.json holds (npm run pin:runtimes after a version change)', async () => {
    assert.equal(await readFile(PINS_FILE, 'utf8'), await pinsSource(), 'runtime-pins.ts is stale: run `npm run pin:runtimes`');
    assert.equal(RUNTIME_PINS.onnx?.package, 'onnxruntime-node');
  });

  it(
    '`studio-worker engines add onnx` installs the pinned runtime into the data dir with progress and switches the engine on; the ONNX engine loads it from there and its tests pass',
    { timeout: 300_000 },
    async () => {
      const env = cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config'), ...offline });
      const dataDir = join(dir, 'data', 'studio-worker');
      assert.equal(runtimeState('onnx', dataDir).installed, false);
      const added = await run(process.execPath, [BIN, 'engines', 'add', 'onnx'], { cwd: REPO_ROOT, env });
      const total = Object.keys(RUNTIME_PINS.onnx!.packages).length;
      assert.match(added.stderr, new RegExp(`\\[#{30}\\] ${total}/${total} packages`), 'the progress bar reached the end');
      assert.match(added.stdout, /every package matched its pinned sha512/);
      assert.match(await readFile(join(dir, 'config', 'studio-worker', 'config.toml'), 'utf8'), /\[engines\.onnx\]\s*\nenabled = true/);

      const state = runtimeState('onnx', dataDir);
      assert.equal(state.installed, true);
      const entry = locateRuntime('onnx', dataDir);
      assert.ok(entry?.startsWith(join(state.dir, 'node_modules', 'onnxruntime-node')), String(entry));
      assert.deepEqual((await readdir(join(dataDir, 'runtimes'))).filter((name) => name.startsWith('.staging-')), [], 'no staging folder left');

      // The engine prefers the data dir's runtime over any other it could resolve.
      const engine = createOnnxEngine({}, { log: silentLogger, modelsRoot: dir, dataDir });
      try {
        const probe = await engine.probe();
        assert.equal(probe.available, true, JSON.stringify(probe));
        assert.match(probe.detail ?? '', new RegExp(`onnxruntime-node 1\\.\\d+\\.\\d+ from ${state.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      } finally {
        await engine.close();
      }

      // The ONNX engine's own tests, with this data dir as the user's: they run on the runtime just installed.
      // (NODE_TEST_CONTEXT would make the inner runner report to ours instead of printing its summary.)
      const { NODE_TEST_CONTEXT: _inner, ...outside } = env;
      const engineTests = await run(process.execPath, ['--test', '--test-reporter=tap', join(WORKER_DIR, 'test', 'engines', 'onnx-engine.test.ts')], { cwd: REPO_ROOT, env: outside }).catch((error: { stdout?: string }) => error);
      const summary = String(engineTests.stdout);
      assert.match(summary, /^# pass [1-9]\d*$/m, summary.slice(-3000));
      assert.match(summary, /^# fail 0$/m, summary.slice(-3000));

      // A second add finds it there and fetches nothing.
      const again = await run(process.execPath, [BIN, 'engines', 'add', 'onnx'], { cwd: REPO_ROOT, env });
      assert.match(again.stdout, /is already installed/);
      assert.match(again.stdout, /already on/);
      assert.doesNotMatch(again.stderr, /packages/);
    },
  );

  it('installs on first use with consent (install_runtime = true): the probe reports the progress until the runtime is there, then the engine loads it', { timeout: 180_000 }, async () => {
    const dataDir = join(dir, 'first-use');
    const saved = process.env.npm_config_offline;
    process.env.npm_config_offline = 'true';
    const engine = createOnnxEngine({ installRuntime: true }, { log: silentLogger, modelsRoot: dir, dataDir });
    try {
      const reasons: string[] = [];
      const probe = await pollUntil(
        async () => {
          const answer = await engine.probe();
          if (!answer.available) reasons.push(answer.reason ?? '');
          return answer.available ? answer : undefined;
        },
        'the engine to install its runtime and become available',
        150_000,
        100,
      );
      assert.match(reasons[0] ?? '', /^installing onnxruntime-node \S+ into .* \(install_runtime = true\)$/);
      assert.ok(reasons.every((reason) => /^installing onnxruntime-node/.test(reason)), reasons.join('\n'));
      assert.equal(runtimeState('onnx', dataDir).installed, true);
      assert.match(probe.detail ?? '', new RegExp(`from ${join(dataDir, 'runtimes', 'onnx').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    } finally {
      if (saved === undefined) delete process.env.npm_config_offline;
      else process.env.npm_config_offline = saved;
      await engine.close();
    }
  });

  it('refuses a package whose digest differs from the pin (EINTEGRITY): nothing installed, no staging left', { timeout: 120_000 }, async () => {
    const dataDir = join(dir, 'tampered');
    const real = RUNTIME_PINS.onnx!.packages['node_modules/es-errors']!;
    const forged = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;
    const pins: Record<string, RuntimePin> = {
      tiny: { package: 'es-errors', version: real.version, integrity: forged, packages: { 'node_modules/es-errors': { ...real, integrity: forged } } },
    };
    await assert.rejects(
      installRuntime('tiny', { dataDir, pins, env: { ...cleanWorkerEnv({}), ...offline } }),
      (error: unknown) => error instanceof UpdateError && error.code === 'install_failed' && /does not match the digest this worker pinned/.test(error.message),
    );
    assert.equal(existsSync(join(dataDir, 'runtimes', 'tiny')), false);
    assert.deepEqual(await readdir(join(dataDir, 'runtimes')).then((names) => names.filter((name) => name.startsWith('.staging-'))), []);
    assert.equal(locateRuntime('tiny', dataDir, pins), null);
  });

  it('names the engines that have a runtime when asked for another', async () => {
    await assert.rejects(installRuntime('synthetic', { dataDir: join(dir, 'x') }), (error: unknown) => error instanceof UpdateError && error.code === 'unknown_runtime' && /onnx/.test(error.message));
    const refused = await run(process.execPath, [BIN, 'engines', 'add', 'synthetic'], { cwd: REPO_ROOT, env: cleanWorkerEnv({ XDG_DATA_HOME: join(dir, 'd2'), XDG_CONFIG_HOME: join(dir, 'c2') }) }).catch((error: { code?: number; stderr?: string }) => error);
    assert.equal((refused as { code?: number }).code, 2);
    assert.match(String((refused as { stderr?: string }).stderr), /has no runtime to install on demand/);
  });
});
