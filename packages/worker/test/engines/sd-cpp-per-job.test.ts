import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import type { EngineJob } from '../../src/engines/engine.ts';
import { createSdCppEngine, type SdCppEngineConfigInput } from '../../src/engines/sd-cpp/index.ts';
import {
  FAKE_SD_CLI,
  fakeCommand,
  flagValue,
  imageJob,
  isRunning,
  modelFiles,
  readRecord,
  recordingContext,
  scratch,
  serveFiles,
  waitGone,
  zImageFiles,
  failure,
} from './fakes/sd-test-kit.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A models root with Z-Image-Turbo's files, a work dir, and an engine running the fake sd-cli. */
async function setup(config: Partial<SdCppEngineConfigInput> = {}) {
  const root = await scratch();
  cleanups.push(root.cleanup);
  const modelsRoot = join(root.dir, 'models');
  const workDir = join(root.dir, 'work');
  await mkdir(workDir, { recursive: true });
  const files = await zImageFiles(modelsRoot);
  const engine = createSdCppEngine({ sdCli: fakeCommand(FAKE_SD_CLI), vulkanCheck: false, ...config }, { log: silentLogger, modelsRoot, env: { PATH: process.env.PATH } });
  cleanups.push(() => engine.close());
  return { engine, files, modelsRoot, workDir, root: root.dir };
}


async function pngOfSize(bytes: Uint8Array) {
  const meta = await sharp(bytes).metadata();
  return [meta.format, meta.width, meta.height];
}

describe('sd-cpp per job (fake sd-cli)', () => {
  test('txt2img: the argv sd-cli gets, progress from its output, and a PNG of the requested size', async () => {
    const { engine, files, workDir } = await setup();
    const { ctx, updates } = recordingContext(workDir);
    const result = await engine.run(imageJob({ prompt: 'a red fox', negativePrompt: 'blurry', width: 64, height: 48, steps: 4, seed: 7, ext: 'png' }, files), ctx);

    assert.ok(result.type === 'file');
    assert.equal(result.ext, 'png');
    assert.deepEqual(await pngOfSize(result.bytes), ['png', 64, 48]);

    const [diffusion, llm, vae] = files.map((file) => file.path);
    assert.deepEqual(readRecord(workDir).argv, [
      '--diffusion-model', diffusion, '--vae', vae, '--llm', llm,
      '-p', 'a red fox', '--negative-prompt', 'blurry',
      '--cfg-scale', '1', '--steps', '4', '-W', '64', '-H', '48', '-o', join(workDir, 'out.png'),
      '--seed', '7', '--sampling-method', 'euler', '--diffusion-fa',
      '--preview', 'proj', '--preview-path', join(workDir, 'preview.png'),
    ]);

    assert.equal(updates[0]?.phase, 'loading');
    const steps = updates.filter((update) => update.phase === 'generating' && update.preview === undefined);
    assert.deepEqual(steps.map((update) => [update.step, update.total]), [[1, 4], [2, 4], [3, 4], [4, 4]]);
    assert.equal(steps[3]?.fraction, 1);
    const phases = updates.map((update) => update.phase);
    assert.ok(phases.indexOf('encoding') > phases.lastIndexOf('generating'), 'decoding follows the last step');
    assert.ok(phases.lastIndexOf('loading') < phases.indexOf('generating'), 'loading (tensor bars) comes first');
  });

  test('the program’s directory is put on LD_LIBRARY_PATH (libstable-diffusion sits next to sd-cli)', async () => {
    const { engine, files, workDir } = await setup();
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png' }, files), recordingContext(workDir).ctx);
    assert.equal(readRecord(workDir).env.LD_LIBRARY_PATH?.split(':')[0], dirname(process.execPath));
  });

  test('webp is converted from sd-cli’s PNG; any other ext comes back as png', async () => {
    const { engine, files, workDir } = await setup();
    const webp = await engine.run(imageJob({ prompt: 'x', width: 40, height: 24, ext: 'webp' }, files), recordingContext(workDir).ctx);
    assert.ok(webp.type === 'file');
    assert.equal(webp.ext, 'webp');
    assert.deepEqual(await pngOfSize(webp.bytes), ['webp', 40, 24]);
    const jpg = await engine.run(imageJob({ prompt: 'x', width: 40, height: 24, ext: 'jpg' }, files), recordingContext(workDir).ctx);
    assert.ok(jpg.type === 'file');
    assert.equal(jpg.ext, 'png');
  });

  test('cliDefaults fill in what the task leaves open: steps 20 means unchosen, sampler and cfg from the model', async () => {
    const { engine, files, workDir } = await setup();
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png' }, files, { cliDefaults: { cfgScale: 2.5, steps: 5, samplingMethod: 'dpm++2m', flowShift: 3 } }), recordingContext(workDir).ctx);
    const argv = readRecord(workDir).argv;
    assert.deepEqual(
      ['--steps', '--cfg-scale', '--sampling-method', '--flow-shift'].map((flag) => flagValue(argv, flag)),
      ['5', '2.5', 'dpm++2m', '3'],
    );
  });

  test('img2img: the init image is fetched, saved as what its bytes are, and passed with --strength 0.75 (or denoise)', async () => {
    const { engine, files, workDir } = await setup();
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#0a0' } }).jpeg().toBuffer();
    const mask = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#fff' } }).png().toBuffer();
    // A studio's "latest.webp" that really holds JPEG bytes: sd-cli would pick the wrong decoder.
    const server = await serveFiles({ '/assets/latest.webp': { body: jpeg }, '/assets/mask': { body: mask } });
    cleanups.push(server.close);

    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png', initImageUrl: `${server.url}/assets/latest.webp` }, files), recordingContext(workDir, undefined, [server.url]).ctx);
    let argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '--init-img'), join(workDir, 'init.jpg'));
    assert.equal(flagValue(argv, '--strength'), '0.75');
    assert.equal(argv.includes('--mask'), false);

    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png', initImageUrl: `${server.url}/assets/latest.webp`, maskUrl: `${server.url}/assets/mask`, denoise: 0.35 }, files), recordingContext(workDir, undefined, [server.url]).ctx);
    argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '--strength'), '0.35');
    assert.equal(flagValue(argv, '--mask'), join(workDir, 'mask.png'));
  });

  test('input images: real WebP becomes PNG (sd.cpp cannot decode WebP), and data: URLs work', async () => {
    const { engine, files, workDir } = await setup();
    const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00f' } }).webp().toBuffer();
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png', initImageUrl: `data:image/webp;base64,${webp.toString('base64')}` }, files), recordingContext(workDir).ctx);
    const init = flagValue(readRecord(workDir).argv, '--init-img');
    assert.equal(init, join(workDir, 'init.png'));
    assert.equal((await sharp(init).metadata()).format, 'png');
  });

  test('reference mode: -r with the mask, and the init image is not even fetched', async () => {
    const { engine, files, workDir } = await setup();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123' } }).png().toBuffer();
    const server = await serveFiles({ '/ref.png': { body: png }, '/init.png': { body: png }, '/mask.png': { body: png } });
    cleanups.push(server.close);
    await engine.run(
      imageJob({ prompt: 'make it blue', width: 32, height: 32, ext: 'png', refImageUrl: `${server.url}/ref.png`, initImageUrl: `${server.url}/init.png`, maskUrl: `${server.url}/mask.png` }, files),
      recordingContext(workDir, undefined, [server.url]).ctx,
    );
    const argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '-r'), join(workDir, 'ref.png'));
    assert.equal(flagValue(argv, '--mask'), join(workDir, 'mask.png'));
    assert.equal(argv.includes('--init-img'), false);
    assert.deepEqual(server.hits.sort(), ['/mask.png', '/ref.png']);
  });

  test('a full checkpoint (only a "model" file) loads with --model', async () => {
    const { engine, modelsRoot, workDir } = await setup();
    const files = await modelFiles(modelsRoot, 'sd15', [['model', 'v1-5-pruned-emaonly.safetensors']]);
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png' }, files, { cliDefaults: {} }, 'sd15'), recordingContext(workDir).ctx);
    const argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '--model'), files[0]?.path);
    assert.equal(argv.includes('--diffusion-model'), false);
  });

  test('a crash is a retryable engine_error quoting sd-cli’s last stderr line', async () => {
    const { engine, files, workDir } = await setup({ env: { FAKE_SD_CRASH_AT_STEP: '2' } });
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 4 }, files), recordingContext(workDir).ctx));
    assert.equal(failed.code, 'engine_error');
    assert.equal(failed.retryable, true);
    assert.equal(failed.message, 'sd-cli exited with 1: [ERROR] ggml-vulkan.cpp:1634 - vk::Device::allocateMemory: ErrorOutOfDeviceMemory');
  });

  test('a model file sd-cli cannot open: the real exit and error line come through', async () => {
    const { engine, files, workDir } = await setup();
    const broken = files.map((file) => (file.role === 'vae' ? { ...file, path: join(dirname(file.path), 'missing.safetensors') } : file));
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, broken), recordingContext(workDir).ctx));
    assert.equal(failed.code, 'engine_error');
    assert.match(failed.message, /^sd-cli exited with 1: \[ERROR\] main\.cpp:812 {2}- new_sd_ctx_t failed$/);
  });

  test('step watchdog: no new step within step_timeout_secs → killed, retryable, named', async () => {
    const { engine, files, workDir } = await setup({ stepTimeoutSecs: 0.3, env: { FAKE_SD_HANG: 'step', FAKE_SD_HANG_AT_STEP: '2' } });
    const { ctx, waitFor } = recordingContext(workDir);
    const run = engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 6 }, files), ctx);
    await waitFor((update) => update.phase === 'generating' && update.step === 2, 'step 2');
    const pid = readRecord(workDir).pid;
    const failed = await failure(run);
    assert.equal(failed.code, 'engine_error');
    assert.equal(failed.retryable, true);
    assert.match(failed.message, /^step watchdog: sd-cli made no progress for 0\.3 s after step 2\/6 \(step_timeout_secs\); sd-cli was killed/);
    assert.equal(isRunning(pid), false);
  });

  test('load watchdog: no first step within load_timeout_secs → killed, retryable', async () => {
    const { engine, files, workDir } = await setup({ loadTimeoutSecs: 0.3, env: { FAKE_SD_HANG: 'load' } });
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx));
    assert.equal(failed.retryable, true);
    assert.match(failed.message, /^load watchdog: sd-cli made no progress within 0\.3 s of starting \(load_timeout_secs\)/);
    assert.equal(isRunning(readRecord(workDir).pid), false);
  });

  test('silence watchdog: silent after the last step (decoding) for silence_timeout_secs → killed', async () => {
    const { engine, files, workDir } = await setup({ silenceTimeoutSecs: 0.3, stepTimeoutSecs: 0.1, env: { FAKE_SD_HANG: 'decode' } });
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 3 }, files), recordingContext(workDir).ctx));
    assert.match(failed.message, /^silence watchdog: sd-cli printed nothing for 0\.3 s \(silence_timeout_secs\)/);
  });

  test('cancel: the whole process group (sd-cli ignoring SIGTERM, and its grandchild) is gone within 1 s', async () => {
    const { engine, files, workDir } = await setup({ env: { FAKE_SD_STEP_MS: '200', FAKE_SD_GRANDCHILD: '1', FAKE_SD_IGNORE_SIGTERM: '1' } });
    const controller = new AbortController();
    const { ctx, waitFor } = recordingContext(workDir, controller.signal);
    const run = engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 50 }, files), ctx);
    await waitFor((update) => update.phase === 'generating', 'the first step');
    const { pid, grandchildPid } = readRecord(workDir);
    assert.ok(grandchildPid !== null && isRunning(grandchildPid), 'the grandchild runs before the cancel');

    const started = performance.now();
    controller.abort(new Error('cancelled by studio'));
    const failed = await failure(run);
    assert.equal(failed.code, 'cancelled');
    assert.equal(isRunning(pid), false, 'sd-cli is gone when run() rejects');
    await waitGone(grandchildPid, Math.max(1, 1000 - (performance.now() - started)));
    assert.ok(performance.now() - started < 1000, `stopped in ${Math.round(performance.now() - started)} ms`);
  });

  test('an already aborted job starts nothing', async () => {
    const { engine, files, workDir } = await setup();
    const controller = new AbortController();
    controller.abort(new Error('shutdown'));
    const failed = await failure(engine.run(imageJob({ prompt: 'x' }, files), recordingContext(workDir, controller.signal).ctx));
    assert.equal(failed.code, 'cancelled');
    assert.equal(existsSync(join(workDir, 'argv.json')), false);
  });

  test('exit 0 without an image is a retryable engine_error', async () => {
    const { engine, files, workDir } = await setup({ env: { FAKE_SD_SKIP_OUTPUT: '1' } });
    const failed = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32 }, files), recordingContext(workDir).ctx));
    assert.equal(failed.retryable, true);
    assert.match(failed.message, /exited with 0 but wrote no image/);
  });

  test('bad input is refused before sd-cli starts, not retryable', async () => {
    const { engine, files, workDir } = await setup();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123' } }).png().toBuffer();
    const server = await serveFiles({ '/page.html': { body: Buffer.from('<html>hello</html>') }, '/secret.png': { body: png } });
    cleanups.push(server.close);
    // Issue 9: a studio may not read the worker's own network through input images.
    const untrusted = await failure(engine.run(imageJob({ prompt: 'x', initImageUrl: `${server.url}/secret.png` }, files), recordingContext(workDir).ctx));
    assert.equal(untrusted.code, 'bad_input');
    assert.equal(untrusted.retryable, false);
    assert.match(untrusted.message, /initImageUrl http:\/\/127\.0\.0\.1:\d+\/secret\.png is refused: 127\.0\.0\.1 is a loopback address; .*allowed_input_origins/);
    assert.deepEqual(server.hits, [], 'no request reached the loopback server');
    const cases: Array<[string, EngineJob, RegExp]> = [
      ['mask alone', imageJob({ prompt: 'x', maskUrl: 'data:image/png;base64,AAAA' }, files), /maskUrl needs an initImageUrl/],
      ['no model file', imageJob({ prompt: 'x' }, files.filter((file) => file.role === 'vae')), /no "diffusion-model" or "model" file/],
      ['init 404', imageJob({ prompt: 'x', initImageUrl: `${server.url}/missing.png` }, files), /initImageUrl could not be fetched .*HTTP 404/],
      ['init not an image', imageJob({ prompt: 'x', initImageUrl: `${server.url}/page.html` }, files), /initImageUrl is not an image/],
      ['plain http to a remote host', imageJob({ prompt: 'x', refImageUrl: 'http://studio.example/ref.png' }, files), /refImageUrl must be https/],
    ];
    for (const [what, job, message] of cases) {
      const failed = await failure(engine.run(job, recordingContext(workDir, undefined, [server.url]).ctx));
      assert.equal(failed.code, 'bad_input', what);
      assert.equal(failed.retryable, false, what);
      assert.match(failed.message, message, what);
    }
    const llm = { ...imageJob({ prompt: 'x' }, files), task: { kind: 'llm', messages: [], maxTokens: 5, temperature: 0.7 } } as unknown as EngineJob;
    assert.equal((await failure(engine.run(llm, recordingContext(workDir).ctx))).code, 'bad_input');
    assert.equal(existsSync(join(workDir, 'argv.json')), false, 'sd-cli never ran');
  });

  test('identity: name sd-cpp, image only, advertises no concrete ids (the router adds sd-cpp:*)', async () => {
    const { engine } = await setup();
    assert.equal(engine.name, 'sd-cpp');
    assert.deepEqual([...engine.kinds], ['image']);
    assert.deepEqual(engine.advertisedModels(), {});
    const probe = await engine.probe();
    assert.ok(probe.available);
    assert.equal(probe.detail, `sd-cli at ${process.execPath} (per-job; build master-fake-0000000, commit 0000000)`);
  });
});
