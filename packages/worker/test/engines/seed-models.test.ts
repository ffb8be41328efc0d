// The studio's seeded real models must work with the engines that serve them: the SDXL-Turbo
// ComfyUI workflow runs against the fake ComfyUI, and Z-Image-Turbo's source builds the sd-cli
// command line of original-spec §6.3.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { ModelEntry, Task, type ImageTask } from '@studio-worker/protocol';
import { SEED_MODELS } from '../../../studio/src/core/seeds.ts';
import { createComfyuiEngine } from '../../src/engines/comfyui/index.ts';
import type { EngineJob, ResolvedModelFile } from '../../src/engines/engine.ts';
import { buildSdCliArgs } from '../../src/engines/sd-cpp/index.ts';
import { FakeComfyUI } from './fakes/comfyui-server.ts';

function seed(id: string): ModelEntry {
  const found = SEED_MODELS.find((m) => m.id === id);
  assert.ok(found, `seed ${id}`);
  return ModelEntry.parse(found);
}

test('the seeded SDXL-Turbo workflow runs on ComfyUI with its defaults and the task’s prompt', async (t) => {
  const model = seed('sdxl-turbo-comfyui');
  const fake = await FakeComfyUI.start();
  const engine = createComfyuiEngine({ url: fake.url }, { log: silentLogger, modelsRoot: tmpdir() });
  t.after(async () => {
    await engine.close();
    await fake.close();
  });
  const job: EngineJob = { jobId: 'job-seed', attempt: 1, model: model.id, task: Task.parse({ kind: 'image', prompt: 'a red fox', seed: 7 }), source: model.source, files: [] };
  const result = await engine.run(job, { signal: new AbortController().signal, progress() {}, log: silentLogger, workDir: tmpdir() });
  assert.equal(result.type, 'file');
  const meta = await sharp(result.type === 'file' ? result.bytes : new Uint8Array()).metadata();
  assert.deepEqual([meta.width, meta.height], [512, 512], 'the model’s default size');
  const prompt = fake.prompts[0]?.workflow as unknown as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
  const sampler = Object.values(prompt).find((n) => n.class_type === 'KSampler');
  assert.deepEqual([sampler?.inputs.steps, sampler?.inputs.cfg, sampler?.inputs.sampler_name, sampler?.inputs.seed], [1, 1, 'euler_ancestral', 7]);
  assert.ok(Object.values(prompt).some((n) => n.class_type === 'CLIPTextEncode' && n.inputs.text === 'a red fox'));
});

test('the seeded Z-Image-Turbo source builds the original’s sd-cli command line', () => {
  const model = seed('z-image-turbo-q4_k_m.gguf');
  const files: ResolvedModelFile[] = model.source.files.map((f) => ({ role: f.role, filename: f.filename, url: f.url, path: `/models/z/${f.filename}` }));
  const task = Task.parse({ kind: 'image', prompt: 'an aurora fox' }) as ImageTask;
  const args = buildSdCliArgs({ files, source: model.source }, task, {}, '/tmp/out.png', { diffusionFa: true, extraArgs: [] });
  const flag = (name: string) => args[args.indexOf(name) + 1];
  assert.equal(flag('--diffusion-model'), '/models/z/z_image_turbo-Q4_K.gguf');
  assert.equal(flag('--llm'), '/models/z/Qwen3-4B-Instruct-2507-Q4_K_M.gguf');
  assert.equal(flag('--vae'), '/models/z/ae.safetensors');
  assert.deepEqual([flag('--steps'), flag('--cfg-scale'), flag('-W'), flag('-H'), flag('--sampling-method')], ['8', '1', '1024', '1024', 'euler']);
});
