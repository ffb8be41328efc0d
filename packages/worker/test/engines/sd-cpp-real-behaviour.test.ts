// The sd.cpp behaviours our adapters got wrong while the old fakes accepted them (issue 13): each
// test runs against the fake sd-cli / sd-server, which behave as stable-diffusion.cpp at 97d29908.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { buildSdCliArgs, buildSdServerArgs, previewArgs } from '../../src/engines/sd-cpp/args.ts';
import { createSdCppEngine, type SdCppEngineConfigInput } from '../../src/engines/sd-cpp/index.ts';
import { ModelSource, Task, type ImageTask } from '@studio-worker/protocol';
import { FAKE_SD_CLI, FAKE_SD_SERVER, fakeCommand, flagValue, imageJob, modelFiles, readRecord, recordingContext, zImageFiles, failure, engineDirs } from './fakes/sd-test-kit.ts';

const FLAGS = JSON.parse(readFileSync(new URL('./fakes/sd-cpp-flags.json', import.meta.url), 'utf8')) as {
  noValue: string[];
  common: Record<string, string[]>;
  cli: Record<string, string[]>;
  server: Record<string, string[]>;
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(config: Partial<SdCppEngineConfigInput> = {}, childEnv: Record<string, string> = {}) {
  const { modelsRoot, workDir, stateDir, cleanup } = await engineDirs('sdcpp-real-');
  cleanups.push(cleanup);
  const engine = createSdCppEngine(
    { sdCli: fakeCommand(FAKE_SD_CLI), sdServer: fakeCommand(FAKE_SD_SERVER), vulkanCheck: false, env: { FAKE_SD_STATE_DIR: stateDir, ...childEnv }, ...config },
    { log: silentLogger, modelsRoot, env: { PATH: process.env.PATH } },
  );
  cleanups.push(() => engine.close());
  const lines = <T>(name: string): T[] => {
    const file = join(stateDir, name);
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as T) : [];
  };
  return { engine, modelsRoot, workDir, lines };
}


interface Applied {
  prompt: string;
  negative_prompt: string;
  seed: number;
  steps: number;
  sampler: string;
  loras: Array<{ path: string; multiplier: number }>;
}

describe('sd-cli as sd.cpp 97d29908 behaves', () => {
  test('(1) zeroCondT is --model-args qwen_image_zero_cond_t=true: sd-cli no longer knows --qwen-image-zero-cond-t', async () => {
    const { engine, modelsRoot, workDir } = await setup();
    const files = await zImageFiles(modelsRoot);
    const job = imageJob({ prompt: 'edit', width: 32, height: 32, ext: 'png' }, files, { cliDefaults: { steps: 2, zeroCondT: true } });
    const result = await engine.run(job, recordingContext(workDir).ctx);
    assert.equal(result.type, 'file');
    const argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '--model-args'), 'qwen_image_zero_cond_t=true');
    assert.equal(argv.includes('--qwen-image-zero-cond-t'), false);
  });

  test('(2) split text encoders: clip-l, clip-g and t5xxl files load with --clip_l, --clip_g, --t5xxl', async () => {
    const { engine, modelsRoot, workDir } = await setup();
    const files = await modelFiles(modelsRoot, 'sd3.5', [
      ['diffusion-model', 'sd3.5_medium.safetensors'],
      ['clip-l', 'clip_l.safetensors'],
      ['clip-g', 'clip_g.safetensors'],
      ['t5xxl', 't5xxl_fp16.safetensors'],
    ]);
    await engine.run(imageJob({ prompt: 'a lighthouse', width: 32, height: 32, ext: 'png' }, files, { cliDefaults: { steps: 2 } }, 'sd3.5'), recordingContext(workDir).ctx);
    const argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '--clip_l'), files[1]?.path);
    assert.equal(flagValue(argv, '--clip_g'), files[2]?.path);
    assert.equal(flagValue(argv, '--t5xxl'), files[3]?.path);
    assert.equal(argv.includes('--llm'), false, 'a T5 file is not an LLM');
  });

  test('(8) the tensor-loading bar drawn with # (sd.cpp since 563137a5) reports the loading phase with its counts', async () => {
    const { engine, modelsRoot, workDir } = await setup();
    const files = await zImageFiles(modelsRoot);
    const { ctx, updates } = recordingContext(workDir);
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 2, ext: 'png' }, files), ctx);
    const loading = updates.filter((update) => update.phase === 'loading' && update.total !== undefined);
    assert.deepEqual(loading.map((update) => [update.step, update.total]), [[1, 4], [2, 4], [3, 4], [4, 4]]);
  });

  test('--help at probe time: flags the build does not list are not emitted; the status names the build and what it lacks', async () => {
    const { engine, modelsRoot, workDir } = await setup({ diffusionFa: true }, { FAKE_SD_LACKS: '--diffusion-fa,--model-args,--t5xxl' });
    const probe = await engine.probe();
    assert.equal(probe.available, true);
    assert.match(probe.available ? probe.detail ?? '' : '', /build master-fake-0000000, commit 0000000; lacks --model-args, --diffusion-fa, --t5xxl/);

    const files = await zImageFiles(modelsRoot);
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png' }, files, { cliDefaults: { steps: 2, zeroCondT: true } }), recordingContext(workDir).ctx);
    const argv = readRecord(workDir).argv;
    assert.equal(argv.includes('--diffusion-fa'), false);
    assert.equal(argv.includes('--model-args'), false);

    const t5 = await modelFiles(modelsRoot, 'flux', [['diffusion-model', 'flux.gguf'], ['t5xxl', 't5.gguf']]);
    const refused = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32, ext: 'png' }, t5, {}, 'flux'), recordingContext(workDir).ctx));
    assert.equal(refused.code, 'engine_unavailable');
    assert.match(refused.message, /this sd\.cpp build has no --t5xxl/);
  });
});

describe('sd-cli live previews', () => {
  test('--preview proj --preview-path: the PNG sd-cli rewrites every step comes back as previews with their step', async () => {
    const { engine, modelsRoot, workDir } = await setup({}, { FAKE_SD_STEP_MS: '300' });
    const files = await zImageFiles(modelsRoot);
    const { ctx, updates } = recordingContext(workDir);
    await engine.run(imageJob({ prompt: 'x', width: 128, height: 64, steps: 8, ext: 'png' }, files), ctx);
    const argv = readRecord(workDir).argv;
    assert.equal(flagValue(argv, '--preview'), 'proj');
    assert.equal(flagValue(argv, '--preview-path'), join(workDir, 'preview.png'));
    const previews = updates.filter((update) => update.preview !== undefined);
    assert.ok(previews.length >= 1 && previews.length <= 4, `one a second at most (${previews.length} over 2.4 s)`);
    for (const update of previews) {
      assert.equal(update.phase, 'generating');
      assert.equal(update.preview?.mime, 'image/png');
      const meta = await sharp(update.preview?.bytes ?? new Uint8Array()).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['png', 16, 8]);
    }
  });

  test('a build without --preview, or preview = "none", gets no preview flags', async () => {
    const old = await setup({}, { FAKE_SD_LACKS: '--preview' });
    await old.engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 2, ext: 'png' }, await zImageFiles(old.modelsRoot)), recordingContext(old.workDir).ctx);
    assert.equal(readRecord(old.workDir).argv.includes('--preview'), false);
    const off = await setup({ preview: 'none' });
    await off.engine.run(imageJob({ prompt: 'x', width: 32, height: 32, steps: 2, ext: 'png' }, await zImageFiles(off.modelsRoot)), recordingContext(off.workDir).ctx);
    assert.equal(readRecord(off.workDir).argv.includes('--preview'), false);
  });
});

describe('sd-server as sd.cpp 97d29908 behaves', () => {
  test('(3) <lora:name:w> prompt tags become the lora body field (sd-server ignores prompt tags); the tag leaves the prompt', async () => {
    const { engine, modelsRoot, workDir, lines } = await setup({ mode: 'resident' });
    const files = await modelFiles(modelsRoot, 'sd15', [
      ['model', 'sd15.safetensors'],
      ['lora', 'pixel-art.safetensors'],
    ]);
    await engine.run(imageJob({ prompt: 'a castle <lora:pixel-art:0.8>', width: 32, height: 32, ext: 'png' }, files, { cliDefaults: { steps: 2 } }, 'sd15'), recordingContext(workDir).ctx);
    const [applied] = lines<{ applied: Applied }>('applied.log');
    assert.deepEqual(applied?.applied.loras, [{ path: files[1]?.path, multiplier: 0.8 }]);
    assert.equal(applied?.applied.prompt, 'a castle');

    const unknown = await failure(engine.run(imageJob({ prompt: 'a castle <lora:watercolor:1>', width: 32, height: 32, ext: 'png' }, files, {}, 'sd15'), recordingContext(workDir).ctx));
    assert.equal(unknown.code, 'bad_input');
    assert.match(unknown.message, /LoRA "watercolor" but the model has no such lora file \(it has pixel-art\)/);
  });

  test('(7) an unknown sampler, which sd-server would silently replace with its default, fails before generating', async () => {
    const { engine, modelsRoot, workDir, lines } = await setup({ mode: 'resident' });
    const files = await zImageFiles(modelsRoot);
    const refused = await failure(engine.run(imageJob({ prompt: 'x', width: 32, height: 32, samplingMethod: 'euler_ancestral_turbo', ext: 'png' }, files), recordingContext(workDir).ctx));
    assert.equal(refused.code, 'bad_input');
    assert.match(refused.message, /has no sampler "euler_ancestral_turbo" \(it would silently use its default instead\); it has: default, euler, euler_a/);
    assert.equal(lines('applied.log').length, 0, 'nothing was generated');
    await engine.run(imageJob({ prompt: 'x', width: 32, height: 32, samplingMethod: 'dpm++2m', ext: 'png' }, files), recordingContext(workDir).ctx);
    assert.equal(lines<{ applied: Applied }>('applied.log')[0]?.applied.sampler, 'dpm++2m');
  });
});

test('the flag table: every flag our argv builders emit is in sd-cpp-flags.json, the one table the fakes parse with', () => {
  const names = (tables: Record<string, string[]>[]) => new Set(tables.flatMap((table) => Object.values(table).flat().flatMap((entry) => entry.split(' '))));
  const cliFlags = names([FLAGS.common, FLAGS.cli]);
  const serverFlags = names([FLAGS.common, FLAGS.server]);
  const files = [
    { role: 'diffusion-model', filename: 'd.gguf', path: '/m/d.gguf', url: 'https://x/d' },
    { role: 'vae', filename: 'v.gguf', path: '/m/v.gguf', url: 'https://x/v' },
    { role: 'text-encoder', filename: 'l.gguf', path: '/m/l.gguf', url: 'https://x/l' },
    { role: 'text-encoder-vision', filename: 'lv.gguf', path: '/m/lv.gguf', url: 'https://x/lv' },
    { role: 'clip-l', filename: 'cl.gguf', path: '/m/cl.gguf', url: 'https://x/cl' },
    { role: 'clip-g', filename: 'cg.gguf', path: '/m/cg.gguf', url: 'https://x/cg' },
    { role: 't5xxl', filename: 't5.gguf', path: '/m/t5.gguf', url: 'https://x/t5' },
    { role: 'lora', filename: 'lo.gguf', path: '/m/lo.gguf', url: 'https://x/lo' },
  ] as const;
  const source = ModelSource.parse({ engine: 'sd-cpp', cliDefaults: { flowShift: 3, zeroCondT: true, offloadToCpu: true, samplingMethod: 'euler', cfgScale: 2 } });
  const task = Task.parse({ kind: 'image', prompt: 'p', negativePrompt: 'n', seed: 3, width: 64, height: 64, steps: 4 }) as ImageTask;
  const options = { diffusionFa: true, extraArgs: [] };
  const job = { files: [...files], source };
  const emitted = (args: string[]) => args.filter((arg) => arg.startsWith('-') && !/^-\d/.test(arg));
  for (const inputs of [{}, { init: '/i.png', mask: '/m.png' }, { ref: '/r.png' }]) {
    for (const flag of emitted([...buildSdCliArgs(job, task, inputs, '/o.png', options), ...previewArgs('proj', '/p.png')])) assert.ok(cliFlags.has(flag), `sd-cli has no ${flag}`);
  }
  for (const flag of emitted(buildSdServerArgs(job, options))) assert.ok(serverFlags.has(flag), `sd-server has no ${flag}`);
  assert.equal(cliFlags.has('--qwen-image-zero-cond-t'), false, 'removed in bb849711');
});
