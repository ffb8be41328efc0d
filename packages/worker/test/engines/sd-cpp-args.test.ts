import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { ModelSource, Task, type ImageTask } from '@studio-worker/protocol';
import type { ResolvedModelFile } from '../../src/engines/engine.ts';
import { EngineFailure } from '../../src/engines/engine.ts';
import { buildSdApiRequest, buildSdCliArgs, buildSdServerArgs, resolveGenerationValues } from '../../src/engines/sd-cpp/args.ts';
import { readArchive, flattenName } from '../../src/engines/sd-cpp/archive.ts';
import { OutputSplitter, parseOutputLine, ProgressTracker, type TrackedUpdate } from '../../src/engines/sd-cpp/progress.ts';
import { sniffImageFormat } from '../../src/engines/shared/input-images.ts';
import { tarGzArchive, zipArchive } from './fakes/sd-archives.ts';

const FILES: ResolvedModelFile[] = [
  { role: 'diffusion-model', filename: 'z.gguf', path: '/m/z/z.gguf', url: 'https://x/z.gguf' },
  { role: 'text-encoder', filename: 'qwen.gguf', path: '/m/z/qwen.gguf', url: 'https://x/qwen.gguf' },
  { role: 'text-encoder-vision', filename: 'vit.gguf', path: '/m/z/vit.gguf', url: 'https://x/vit.gguf' },
  { role: 'vae', filename: 'ae.safetensors', path: '/m/z/ae.safetensors', url: 'https://x/ae.safetensors' },
];
const OPTIONS = { diffusionFa: true, extraArgs: [] };

function image(task: Record<string, unknown>): ImageTask {
  return Task.parse({ kind: 'image', prompt: 'a fox', ...task }) as ImageTask;
}

function source(cliDefaults: Record<string, unknown>) {
  return ModelSource.parse({ engine: 'sd-cpp', cliDefaults });
}

test('sd-cli argv: model files, prompt, sampling values, output and switches in the original order', () => {
  const job = { files: FILES, source: source({ cfgScale: 1.0, steps: 8, samplingMethod: 'euler', flowShift: 3, zeroCondT: true, offloadToCpu: true }) };
  const args = buildSdCliArgs(job, image({ negativePrompt: 'blurry', width: 768, height: 512, seed: 9 }), {}, '/w/out.png', { diffusionFa: true, extraArgs: ['--vae-tiling'] });
  assert.deepEqual(args, [
    '--diffusion-model', '/m/z/z.gguf',
    '--vae', '/m/z/ae.safetensors',
    '--llm', '/m/z/qwen.gguf',
    '--llm_vision', '/m/z/vit.gguf',
    '-p', 'a fox',
    '--negative-prompt', 'blurry',
    '--cfg-scale', '1', '--steps', '8', '-W', '768', '-H', '512', '-o', '/w/out.png',
    '--seed', '9',
    '--sampling-method', 'euler',
    '--flow-shift', '3', '--model-args', 'qwen_image_zero_cond_t=true', '--offload-to-cpu', '--diffusion-fa',
    '--vae-tiling',
  ]);
});

test('sd-cli argv: an empty negative prompt, no seed and no sampler leave their flags out; diffusion_fa=false drops --diffusion-fa', () => {
  const args = buildSdCliArgs({ files: FILES.slice(0, 1), source: source({}) }, image({ negativePrompt: '  ' }), {}, '/w/out.png', { diffusionFa: false, extraArgs: [] });
  for (const flag of ['--negative-prompt', '--seed', '--sampling-method', '--diffusion-fa', '--vae', '--llm']) assert.equal(args.includes(flag), false, flag);
});

test('sd-cli argv: a full checkpoint loads with --model; loras add --lora-model-dir', () => {
  const files: ResolvedModelFile[] = [
    { role: 'model', filename: 'sd15.safetensors', path: '/m/sd15/sd15.safetensors', url: 'https://x/a' },
    { role: 'lora', filename: 'style.safetensors', path: '/m/sd15/style.safetensors', url: 'https://x/b' },
  ];
  const args = buildSdCliArgs({ files, source: source({}) }, image({}), {}, '/w/out.png', OPTIONS);
  assert.deepEqual(args.slice(0, 4), ['--model', '/m/sd15/sd15.safetensors', '--lora-model-dir', '/m/sd15']);
  assert.equal(args.includes('--diffusion-model'), false);
});

test('sd-cli argv: no diffusion-model or model file is a non-retryable bad_input', () => {
  assert.throws(
    () => buildSdCliArgs({ files: FILES.slice(1), source: source({}) }, image({}), {}, '/w/out.png', OPTIONS),
    (error: unknown) => error instanceof EngineFailure && error.code === 'bad_input' && !error.retryable,
  );
});

test('sd-cli argv: img2img gets --init-img and --strength (default 0.75, else denoise) and an optional --mask', () => {
  const job = { files: FILES.slice(0, 1), source: source({}) };
  const plain = buildSdCliArgs(job, image({}), { init: '/w/init.jpg' }, '/w/out.png', OPTIONS);
  assert.deepEqual(plain.slice(4, 8), ['--init-img', '/w/init.jpg', '--strength', '0.75']);
  const masked = buildSdCliArgs(job, image({ denoise: 0.4 }), { init: '/w/init.jpg', mask: '/w/mask.png' }, '/w/out.png', OPTIONS);
  assert.deepEqual(masked.slice(4, 10), ['--init-img', '/w/init.jpg', '--strength', '0.4', '--mask', '/w/mask.png']);
});

test('sd-cli argv: reference mode uses -r (with the mask) and wins over an init image', () => {
  const job = { files: FILES.slice(0, 1), source: source({}) };
  const args = buildSdCliArgs(job, image({ denoise: 0.3 }), { init: '/w/init.png', ref: '/w/ref.png', mask: '/w/mask.png' }, '/w/out.png', OPTIONS);
  assert.deepEqual(args.slice(4, 8), ['-r', '/w/ref.png', '--mask', '/w/mask.png']);
  assert.equal(args.includes('--init-img'), false);
  assert.equal(args.includes('--strength'), false);
});

test('value precedence (original-spec §6.3): steps 20 means unchosen; cfg and sampler fall back to cliDefaults, then 1.0 / none', () => {
  const zImage = { cfgScale: 1.5, steps: 8, width: 1024, height: 1024, samplingMethod: 'euler' };
  assert.deepEqual(resolveGenerationValues(image({}), zImage), { width: 1024, height: 1024, steps: 8, cfgScale: 1.5, samplingMethod: 'euler' });
  assert.equal(resolveGenerationValues(image({ steps: 30 }), zImage).steps, 30);
  assert.equal(resolveGenerationValues(image({ steps: 20 }), {}).steps, 8);
  assert.equal(resolveGenerationValues(image({ cfgScale: 4.5 }), zImage).cfgScale, 4.5);
  assert.equal(resolveGenerationValues(image({ cfgScale: 0 }), zImage).cfgScale, 1.5, 'cfg 0 is "not given"');
  assert.equal(resolveGenerationValues(image({}), { cfgScale: 0 }).cfgScale, 1.0);
  assert.equal(resolveGenerationValues(image({ samplingMethod: 'dpm++2m' }), zImage).samplingMethod, 'dpm++2m');
  assert.equal(resolveGenerationValues(image({}), {}).samplingMethod, undefined);
  assert.equal(resolveGenerationValues(image({ seed: 0 }), {}).seed, 0);
});

test('value precedence: width/height come from the task when > 0, else cliDefaults, else 1024', () => {
  // A task without a size takes the model's (Z-Image: 1024²), else 1024.
  const unsized = image({});
  assert.deepEqual(
    [resolveGenerationValues(unsized, { width: 768, height: 640 }).width, resolveGenerationValues(unsized, { width: 768, height: 640 }).height],
    [768, 640],
  );
  assert.equal(resolveGenerationValues(unsized, {}).width, 1024);
  assert.equal(resolveGenerationValues(image({ width: 256 }), { width: 768 }).width, 256);
});

test('sd-server argv: the same model flags and per-model switches, nothing per job', () => {
  const args = buildSdServerArgs({ files: FILES, source: source({ flowShift: 3, steps: 8 }) }, OPTIONS);
  assert.deepEqual(args, ['--diffusion-model', '/m/z/z.gguf', '--vae', '/m/z/ae.safetensors', '--llm', '/m/z/qwen.gguf', '--llm_vision', '/m/z/vit.gguf', '--flow-shift', '3', '--diffusion-fa']);
});

test('sdapi request: txt2img with the resolved values; img2img with init, mask and strength; reference via extra_images', () => {
  const defaults = { cfgScale: 1.0, steps: 8, samplingMethod: 'euler' };
  const txt = buildSdApiRequest(image({ negativePrompt: 'dark', seed: 3, width: 640, height: 384 }), defaults, {});
  assert.equal(txt.route, '/sdapi/v1/txt2img');
  assert.deepEqual(txt.body, { prompt: 'a fox', negative_prompt: 'dark', width: 640, height: 384, steps: 8, cfg_scale: 1, batch_size: 1, seed: 3, sampler_name: 'euler' });
  const bytes = new Uint8Array([1, 2, 3]);
  const img = buildSdApiRequest(image({}), defaults, { init: bytes, mask: bytes });
  assert.equal(img.route, '/sdapi/v1/img2img');
  assert.deepEqual([img.body.init_images, img.body.mask, img.body.denoising_strength], [['AQID'], 'AQID', 0.75]);
  const ref = buildSdApiRequest(image({}), defaults, { init: bytes, ref: bytes });
  assert.equal(ref.route, '/sdapi/v1/txt2img');
  assert.deepEqual(ref.body.extra_images, ['AQID']);
  assert.equal(ref.body.init_images, undefined);
});

test('output parsing: log lines, sampling bars, tensor-loading bars, and ANSI colour codes', () => {
  assert.deepEqual(parseOutputLine('[INFO ] stable-diffusion.cpp:236  - loading model'), { kind: 'log', level: 'INFO', text: 'stable-diffusion.cpp:236  - loading model' });
  assert.deepEqual(parseOutputLine('\x1b[31;1m[ERROR]\x1b[0m main.cpp:1 - new_sd_ctx_t failed'), { kind: 'log', level: 'ERROR', text: 'main.cpp:1 - new_sd_ctx_t failed' });
  assert.deepEqual(parseOutputLine('  |=========>                                        | 3/8 - 1.23s/it\x1b[K'), { kind: 'bar', step: 3, total: 8, unit: 'iteration' });
  assert.deepEqual(parseOutputLine('  |==================================================| 8/8 - 4.56it/s'), { kind: 'bar', step: 8, total: 8, unit: 'iteration' });
  assert.deepEqual(parseOutputLine('  |=====>     | 120/480 - 812.35MB/s'), { kind: 'bar', step: 120, total: 480, unit: 'bytes' });
  assert.deepEqual(parseOutputLine('ggml_vulkan: Found 1 Vulkan devices:'), { kind: 'text', text: 'ggml_vulkan: Found 1 Vulkan devices:' });
  assert.equal(parseOutputLine('   \x1b[K'), undefined);
});

test('output splitting: a redrawn bar is reported when it is drawn, not when the next one starts', () => {
  const lines: string[] = [];
  const splitter = new OutputSplitter((line) => lines.push(line));
  splitter.push('[INFO ] a.cpp:1 - sampling using euler method\n');
  splitter.push('\r  |==>   | 1/3 - 1.00s/it\x1b[K');
  assert.equal(lines.length, 2, 'the first bar is out before the second is drawn');
  splitter.push('\r  |====> | 2/3 - 1.00s/it\x1b[K');
  splitter.push('\r  |======| 3');
  splitter.push('/3 - 1.00s/it\x1b[K\n[INFO ] a.cpp:2 - sampling completed, taking 3.00s\n');
  splitter.end();
  const events = lines.map(parseOutputLine);
  assert.deepEqual(
    events.map((event) => (event?.kind === 'bar' ? `${event.step}/${event.total}` : event?.kind)),
    ['log', '1/3', '2/3', '3/3', 'log'],
  );
});

test('progress tracking: loading bars, then generating steps, then decoding after "sampling completed"', () => {
  const tracker = new ProgressTracker();
  const read = (line: string): TrackedUpdate | undefined => {
    const event = parseOutputLine(line);
    return event === undefined ? undefined : tracker.read(event);
  };
  assert.deepEqual(read('  |===| 10/40 - 500.00MB/s'), { phase: 'loading', step: 10, total: 40, message: 'loading tensors' });
  assert.deepEqual(read('  |===| 2/8 - 1.10s/it'), { phase: 'generating', step: 2, total: 8 });
  assert.deepEqual(read('[INFO ] x.cpp:1 - sampling completed, taking 9.00s'), { phase: 'encoding', message: 'decoding latents' });
  assert.deepEqual(read('  |===| 3/16 - 1.10s/it'), { phase: 'encoding', step: 3, total: 16, message: 'decoding latents' });
});

test('magic-byte sniffing: PNG, JPEG, WebP, GIF, BMP, TIFF, and nothing else', async () => {
  const pixel = sharp({ create: { width: 2, height: 2, channels: 3, background: '#f00' } });
  assert.equal(sniffImageFormat(await pixel.clone().png().toBuffer()), 'png');
  assert.equal(sniffImageFormat(await pixel.clone().jpeg().toBuffer()), 'jpeg');
  assert.equal(sniffImageFormat(await pixel.clone().webp().toBuffer()), 'webp');
  assert.equal(sniffImageFormat(await pixel.clone().gif().toBuffer()), 'gif');
  assert.equal(sniffImageFormat(await pixel.clone().tiff().toBuffer()), 'tiff');
  assert.equal(sniffImageFormat(Buffer.from('BM\0\0\0\0')), 'bmp');
  assert.equal(sniffImageFormat(Buffer.from('<html>not an image</html>')), undefined);
  assert.equal(sniffImageFormat(new Uint8Array()), undefined);
});

test('archives: zip (stored and deflated) and tar.gz entries read back; paths flatten to plain names', () => {
  const files = [
    { name: 'release/', directory: true },
    { name: 'release/sd-cli', data: '#!/bin/sh\necho hi\n' },
    { name: 'release/lib/libstable-diffusion.so', data: Buffer.alloc(3000, 7) },
    { name: 'release/libsd.so', symlink: 'libstable-diffusion.so' },
    { name: `${'deep/'.repeat(30)}long-name.txt`, data: 'long' },
  ];
  for (const archive of [zipArchive(files), zipArchive(files, { deflate: false }), tarGzArchive(files)]) {
    const entries = readArchive(archive);
    assert.deepEqual(
      entries.map((entry) => [entry.kind, flattenName(entry.name)]),
      [['directory', 'release'], ['file', 'sd-cli'], ['file', 'libstable-diffusion.so'], ['symlink', 'libsd.so'], ['file', 'long-name.txt']],
    );
    const lib = entries[2];
    assert.ok(lib?.kind === 'file');
    assert.deepEqual(lib.data(), Buffer.alloc(3000, 7));
    const link = entries[3];
    assert.ok(link?.kind === 'symlink');
    assert.equal(link.target, 'libstable-diffusion.so');
  }
  assert.equal(flattenName('../../evil'), 'evil');
  assert.equal(flattenName('C:\\temp\\..\\sd-cli.exe'), 'sd-cli.exe');
  assert.equal(flattenName('a/..'), undefined);
  assert.equal(flattenName('/'), undefined);
});

test('archives: a corrupt zip entry (CRC mismatch) is refused', () => {
  const archive = zipArchive([{ name: 'sd-cli', data: 'abcdef' }], { deflate: false });
  const first = 30 + 'sd-cli'.length;
  archive.writeUInt8(archive.readUInt8(first) ^ 0xff, first); // flip the first data byte
  const [entry] = readArchive(archive);
  assert.ok(entry?.kind === 'file');
  assert.throws(() => entry.data(), /corrupt/);
});
