import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { createSdCppEngine, type SdCppEngineConfigInput } from '../../src/engines/sd-cpp/index.ts';
import { FAKE_SD_SERVER, fakeCommand, imageJob, isRunning, modelFiles, recordingContext, scratch, serveFiles, waitGone, zImageFiles, failure, engineDirs } from './fakes/sd-test-kit.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface LoadLine {
  pid: number;
  model: string;
  argv: string[];
}
interface RequestLine {
  pid: number;
  route: string;
  body: Record<string, unknown>;
}

async function setup(config: Partial<SdCppEngineConfigInput> = {}, env: Record<string, string> = {}) {
  const { modelsRoot, workDir, stateDir, cleanup } = await engineDirs('sdcpp-resident-');
  cleanups.push(cleanup);
  const controlFile = join(stateDir, 'control.json');
  const files = await zImageFiles(modelsRoot);
  const engine = createSdCppEngine(
    { mode: 'resident', sdServer: fakeCommand(FAKE_SD_SERVER), vulkanCheck: false, env: { FAKE_SD_STATE_DIR: stateDir, FAKE_SD_CONTROL: controlFile, ...env }, ...config },
    { log: silentLogger, modelsRoot, env: { PATH: process.env.PATH } },
  );
  cleanups.push(() => engine.close());
  const lines = <T>(name: string): T[] => {
    const file = join(stateDir, name);
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as T) : [];
  };
  return {
    engine,
    files,
    modelsRoot,
    workDir,
    loads: () => lines<LoadLine>('loads.log'),
    requests: () => lines<RequestLine>('requests.log'),
    script: (control: Record<string, unknown>) => writeFile(controlFile, JSON.stringify(control)),
  };
}


describe('sd-cpp resident (fake sd-server)', () => {
  test('a port taken by another program between choosing it and sd-server listening: another port, the job still runs', async () => {
    const marker = join(await mkdtemp(join(tmpdir(), 'sd-port-taken-')), 'taken-once');
    const { engine, files, workDir, loads } = await setup({}, { FAKE_SD_PORT_TAKEN_ONCE: marker });
    const result = await engine.run(imageJob({ prompt: 'after the race', width: 32, height: 32, ext: 'png' }, files), recordingContext(workDir).ctx);
    assert.equal(result.type, 'file');
    assert.ok(existsSync(marker), 'the first start met a taken port');
    const [first, second] = loads();
    assert.ok(first && second, 'sd-server was started twice');
    const portOf = (argv: string[]) => argv[argv.indexOf('--listen-port') + 1];
    assert.equal(portOf(first.argv), readFileSync(marker, 'utf8'));
    assert.notEqual(portOf(second.argv), portOf(first.argv), 'the second start got another port');
    assert.equal(engine.residentServer()?.port, Number(portOf(second.argv)));
  });

  test('two jobs for one model load it once; both answered over /sdapi/v1/txt2img at their own sizes', async () => {
    const { engine, files, workDir, loads, requests } = await setup();
    const first = recordingContext(workDir);
    const a = await engine.run(imageJob({ prompt: 'one', width: 64, height: 32, seed: 5, ext: 'png' }, files), first.ctx);
    const b = await engine.run(imageJob({ prompt: 'two', width: 48, height: 48, ext: 'webp' }, files), recordingContext(workDir).ctx);

    assert.ok(a.type === 'file' && b.type === 'file');
    assert.deepEqual([a.ext, (await sharp(a.bytes).metadata()).width, (await sharp(a.bytes).metadata()).height], ['png', 64, 32]);
    assert.deepEqual([b.ext, (await sharp(b.bytes).metadata()).format, (await sharp(b.bytes).metadata()).width], ['webp', 'webp', 48]);

    assert.equal(loads().length, 1, 'the model was loaded once');
    const [diffusion, llm, vae] = files.map((file) => file.path);
    const argv = loads()[0]?.argv ?? [];
    const port = engine.residentServer()?.port;
    assert.deepEqual(argv, ['--diffusion-model', diffusion, '--vae', vae, '--llm', llm, '--diffusion-fa', '--listen-ip', '127.0.0.1', '--listen-port', String(port)]);
    assert.deepEqual(
      requests().map((request) => [request.route, request.body.prompt]),
      [['/sdapi/v1/txt2img', 'one'], ['/sdapi/v1/txt2img', 'two']],
    );
    assert.deepEqual(requests()[0]?.body, { prompt: 'one', negative_prompt: '', width: 64, height: 32, steps: 8, cfg_scale: 1, batch_size: 1, seed: 5, sampler_name: 'euler' });

    const steps = first.updates.filter((update) => update.phase === 'generating').map((update) => update.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8], 'progress comes from the server’s output');
    assert.equal(first.updates[0]?.phase, 'loading');
    assert.equal(engine.residentServer()?.label, 'z_image_turbo-Q4_K.gguf');
    const probe = await engine.probe();
    assert.ok(probe.available);
    assert.equal(probe.detail, `sd-server at ${process.execPath} (resident, z_image_turbo-Q4_K.gguf loaded; build master-fake-0000000, commit 0000000)`);
  });

  test('img2img goes to /sdapi/v1/img2img with the sniffed init image, mask and strength; reference mode sends extra_images', async () => {
    const { engine, files, workDir, requests } = await setup();
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#0a0' } }).jpeg().toBuffer();
    const webp = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#fff' } }).webp().toBuffer();
    const server = await serveFiles({ '/latest.webp': { body: jpeg }, '/mask.webp': { body: webp } });
    cleanups.push(server.close);

    await engine.run(imageJob({ prompt: 'edit', width: 32, height: 32, initImageUrl: `${server.url}/latest.webp`, maskUrl: `${server.url}/mask.webp`, denoise: 0.6 }, files), recordingContext(workDir, undefined, [server.url]).ctx);
    await engine.run(imageJob({ prompt: 'like this', width: 32, height: 32, refImageUrl: `${server.url}/latest.webp` }, files), recordingContext(workDir, undefined, [server.url]).ctx);

    const [img2img, reference] = requests();
    assert.equal(img2img?.route, '/sdapi/v1/img2img');
    assert.equal(img2img?.body.denoising_strength, 0.6);
    assert.deepEqual(img2img?.body.init_images, [{ base64Bytes: jpeg.length, decodable: true, head: 'ffd8ffdb' }]);
    assert.equal((img2img?.body.mask as { decodable: boolean; head: string }).decodable, true, 'the WebP mask was sent as PNG');
    assert.equal((img2img?.body.mask as { head: string }).head, '89504e47');
    assert.equal(reference?.route, '/sdapi/v1/txt2img');
    assert.equal((reference?.body.extra_images as unknown[]).length, 1);
  });

  test('a server that crashes mid-job fails it retryably with its last stderr line; the next job restarts it', async () => {
    const { engine, files, workDir, loads, script } = await setup();
    await script({ crashAtStep: 2, exitCode: 134 });
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx));
    assert.equal(failed.code, 'engine_error');
    assert.equal(failed.retryable, true);
    assert.equal(failed.message, 'sd-server exited with 134 while generating: [ERROR] ggml-vulkan.cpp:1634 - vk::Device::allocateMemory: ErrorOutOfDeviceMemory');
    const crashed = loads()[0]?.pid ?? 0;
    assert.equal(isRunning(crashed), false);

    await script({});
    const result = await engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx);
    assert.equal(result.type, 'file');
    assert.equal(loads().length, 2, 'restarted: loaded again');
    assert.notEqual(loads()[1]?.pid, crashed);
  });

  test('cancel kills the server (it cannot interrupt a generation) within 1 s; the next job starts a fresh one', async () => {
    const { engine, files, workDir, loads, script } = await setup({}, { FAKE_SD_IGNORE_SIGTERM: '1' });
    await script({ stepMs: 200 });
    const controller = new AbortController();
    const { ctx, waitFor } = recordingContext(workDir, controller.signal);
    const run = engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 50 }, files), ctx);
    await waitFor((update) => update.phase === 'generating', 'the first step');
    const pid = engine.residentServer()?.pid ?? 0;
    assert.ok(isRunning(pid));

    const started = performance.now();
    controller.abort(new Error('cancelled by studio'));
    const failed = await failure(run);
    assert.equal(failed.code, 'cancelled');
    await waitGone(pid, Math.max(1, 1000 - (performance.now() - started)));
    assert.equal(engine.residentServer(), undefined);

    await script({});
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx);
    assert.equal(loads().length, 2);
  });

  test('a job for another model stops the old server first: one resident model at a time', async () => {
    const { engine, files, modelsRoot, workDir, loads } = await setup();
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx);
    const first = engine.residentServer();
    const other = await modelFiles(modelsRoot, 'flux', [['diffusion-model', 'flux1-schnell-q4_k.gguf'], ['vae', 'ae.safetensors']]);
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, other, {}, 'flux'), recordingContext(workDir).ctx);

    assert.ok(first !== undefined);
    assert.equal(isRunning(first.pid), false, 'the first server is gone');
    assert.equal(engine.residentServer()?.label, 'flux1-schnell-q4_k.gguf');
    assert.deepEqual(loads().map((load) => load.model), [files[0]?.path, other[0]?.path]);
  });

  test('step watchdog on a resident server: killed, retryable, and restarted for the next job', async () => {
    const { engine, files, workDir, loads, script } = await setup({ stepTimeoutSecs: 0.3 });
    await script({ hangAtStep: 2 });
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx));
    assert.equal(failed.retryable, true);
    assert.match(failed.message, /^step watchdog: sd-server made no progress for 0\.3 s after step 2\/8 \(step_timeout_secs\); sd-server was killed and will be restarted/);
    assert.equal(isRunning(loads()[0]?.pid ?? 0), false);
    await script({});
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx);
    assert.equal(loads().length, 2);
  });

  test('load watchdog: a server that never becomes ready is killed and the job fails retryably', async () => {
    const { engine, files, workDir } = await setup({ loadTimeoutSecs: 0.4 }, { FAKE_SD_HANG_LOAD: '1' });
    const { ctx, waitFor } = recordingContext(workDir);
    const run = engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), ctx);
    await waitFor((update) => update.phase === 'loading', 'loading');
    const failed = await failure(run);
    assert.match(failed.message, /^load watchdog: sd-server made no progress within 0\.4 s of starting \(load_timeout_secs\)/);
    assert.equal(engine.residentServer(), undefined);
  });

  test('a server that cannot load the model: its exit and error line; an error answer: its status and text', async () => {
    const { engine, files, workDir, script } = await setup();
    const missing = files.map((file) => (file.role === 'text-encoder' ? { ...file, path: `${file.path}.missing` } : file));
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, missing), recordingContext(workDir).ctx));
    assert.equal(failed.message, 'sd-server exited with 1 while loading the model: [ERROR] main.cpp:285  - new_sd_ctx_t failed');

    await script({ status: 500, error: 'generate_image returned no results' });
    const answered = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx));
    assert.equal(answered.code, 'engine_error');
    assert.equal(answered.retryable, true);
    assert.equal(answered.message, 'sd-server answered 500: generate_image returned no results: scripted failure');
    assert.ok(engine.residentServer() !== undefined, 'an error answer does not cost the loaded model');
  });

  test('close() stops the resident server', async () => {
    const { engine, files, workDir } = await setup();
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx);
    const pid = engine.residentServer()?.pid ?? 0;
    assert.ok(isRunning(pid));
    await engine.close();
    assert.equal(isRunning(pid), false);
  });

  test('probe in resident mode looks for sd-server and says how to configure it', async () => {
    const root = await scratch();
    cleanups.push(root.cleanup);
    const engine = createSdCppEngine({ mode: 'resident', vulkanCheck: false }, { log: silentLogger, modelsRoot: root.dir, env: { PATH: root.dir } });
    const probe = await engine.probe();
    assert.equal(probe.available, false);
    assert.ok(!probe.available);
    assert.match(probe.reason, /^sd-server not found: set \[engines\.sd-cpp\] sd_server = "\/path\/to\/sd-server", set STUDIO_WORKER_SD_SERVER/);
  });
});
