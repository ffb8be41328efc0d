import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelSource, Task, type ImageTask, type ModelSourceInput, type TaskInput, type VideoTask } from '@studio-worker/protocol';
import { EngineFailure, type EngineJob, type ResolvedModelFile } from '../../src/engines/engine.ts';
import { comfyPromptId, comfySamplerName, fillWorkflow, loadWorkflowTemplate, placeholderValues, validateWorkflow, type ApiWorkflow } from '../../src/engines/comfyui/index.ts';
import { ComfyuiEngineConfig } from '../../src/engines/comfyui/index.ts';

const TEMPLATE: ApiWorkflow = {
  '3': { class_type: 'KSampler', inputs: { seed: '{{seed}}', steps: '{{steps}}', cfg: '{{cfg}}', sampler_name: '{{sampler}}', model: ['4', 0] } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: '{{width}}', height: '{{ height }}', batch_size: 1 } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: 'masterpiece, {{prompt}} ({{width}}x{{height}})', clip: ['4', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: '{{negative_prompt}}', clip: ['4', 1] }, _meta: { title: 'Negative {{not_touched}}' } },
};

function imageTask(input: Omit<Extract<TaskInput, { kind: 'image' }>, 'kind'>): ImageTask {
  return Task.parse({ kind: 'image', ...input }) as ImageTask;
}

function job(source: Partial<ModelSourceInput>, files: ResolvedModelFile[] = []): Pick<EngineJob, 'model' | 'source' | 'files'> {
  return { model: 'sdxl-comfy', source: ModelSource.parse({ engine: 'comfyui', ...source }), files };
}

function badInput(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof EngineFailure, `expected an EngineFailure, got ${String(error)}`);
    assert.equal(error.code, 'bad_input');
    assert.equal(error.retryable, false);
    assert.match(error.message, pattern);
    return true;
  };
}

test('fillWorkflow: a whole-string placeholder becomes the typed value, one inside text is substituted as text', () => {
  const { values } = placeholderValues(imageTask({ prompt: 'a red fox', negativePrompt: 'blurry', width: 96, height: 64, steps: 6, seed: 42, cfgScale: 5.5, samplingMethod: 'euler_a' }), {});
  const filled = fillWorkflow(TEMPLATE, values);
  assert.deepEqual(filled['3']?.inputs, { seed: 42, steps: 6, cfg: 5.5, sampler_name: 'euler_ancestral', model: ['4', 0] });
  assert.deepEqual(filled['5']?.inputs, { width: 96, height: 64, batch_size: 1 });
  assert.equal(filled['6']?.inputs.text, 'masterpiece, a red fox (96x64)');
  assert.equal(filled['7']?.inputs.text, 'blurry');
  // Only inputs are templates: titles and the template itself are left alone.
  assert.equal(filled['7']?._meta?.title, 'Negative {{not_touched}}');
  assert.equal(TEMPLATE['3']?.inputs.seed, '{{seed}}');
});

test('fillWorkflow: unknown placeholders are bad input naming each node and input', () => {
  const template: ApiWorkflow = {
    '1': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}} by {{artist}}' } },
    '2': { class_type: 'KSampler', inputs: { denoise: '{{denoise}}', nested: [{ deep: '{{frames}}' }] } },
  };
  const { values } = placeholderValues(imageTask({ prompt: 'x' }), {});
  assert.throws(() => fillWorkflow(template, values), badInput(/\{\{artist\}\} in node 1 \(CLIPTextEncode\) input "text".*\{\{denoise\}\} in node 2 \(KSampler\).*\{\{frames\}\} in node 2/));
});

test('placeholderValues: task first, then cliDefaults, then fallbacks; steps 20 means "not chosen"', () => {
  const fromDefaults = placeholderValues(imageTask({ prompt: 'p', steps: 20 }), { steps: 8, cfgScale: 1, samplingMethod: 'dpm++2m' }, () => 7);
  assert.equal(fromDefaults.values.steps, 8);
  assert.equal(fromDefaults.values.cfg, 1);
  assert.equal(fromDefaults.values.sampler, 'dpmpp_2m');
  assert.equal(fromDefaults.values.negative_prompt, '');
  assert.equal(fromDefaults.seed, 7);
  assert.equal(fromDefaults.randomSeed, true);

  const fromTask = placeholderValues(imageTask({ prompt: 'p', steps: 30, cfgScale: 4, samplingMethod: 'dpmpp_2m_sde', seed: 0 }), { steps: 8, cfgScale: 1 }, () => 7);
  assert.deepEqual([fromTask.values.steps, fromTask.values.cfg, fromTask.values.sampler, fromTask.seed, fromTask.randomSeed], [30, 4, 'dpmpp_2m_sde', 0, false]);

  const fallbacks = placeholderValues(imageTask({ prompt: 'p' }), {}, () => 7);
  assert.deepEqual([fallbacks.values.steps, fallbacks.values.cfg, fallbacks.values.sampler], [20, 7, 'euler']);

  // A negative seed is sd-cli's "random" (the wire refuses one since seeds are u64; kept defensively).
  assert.equal(placeholderValues({ ...imageTask({ prompt: 'p' }), seed: -1 }, {}, () => 99).seed, 99);
});

test('placeholderValues: a random seed is a whole number ComfyUI accepts, and differs between calls', () => {
  const seeds = new Set(Array.from({ length: 5 }, () => placeholderValues(imageTask({ prompt: 'p' }), {}).seed));
  assert.ok(seeds.size > 1);
  for (const seed of seeds) assert.ok(Number.isSafeInteger(seed) && seed >= 0);
});

test('placeholderValues: video tasks add frames, fps and seconds', () => {
  const video = Task.parse({ kind: 'video', prompt: 'waves', seconds: 1.5, fps: 8, width: 320, height: 192 }) as VideoTask;
  const { values } = placeholderValues(video, {}, () => 1);
  assert.deepEqual([values.frames, values.fps, values.seconds, values.width, values.height], [12, 8, 1.5, 320, 192]);
});

test('comfySamplerName: sd.cpp names map to ComfyUI names; others pass through', () => {
  assert.equal(comfySamplerName('euler_a'), 'euler_ancestral');
  assert.equal(comfySamplerName('dpm++2s_a'), 'dpmpp_2s_ancestral');
  assert.equal(comfySamplerName('euler'), 'euler');
  assert.equal(comfySamplerName('uni_pc_bh2'), 'uni_pc_bh2');
});

test('comfyPromptId: a stable UUIDv5 per job and attempt', () => {
  const first = comfyPromptId('job-1', 1);
  // RFC 9562 UUIDv5 of "job-1#1" in our namespace, as Python's uuid.uuid5 computes it.
  assert.equal(first, 'a882fd38-e1ae-5ad8-bfc3-1cb6c52bf9cd');
  assert.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(comfyPromptId('job-1', 1), first);
  assert.notEqual(comfyPromptId('job-1', 2), first);
  assert.notEqual(comfyPromptId('job-2', 1), first);
});

test('validateWorkflow: UI-format exports, empty graphs and nodes without class_type or inputs are bad input', () => {
  assert.throws(() => validateWorkflow({ nodes: [], links: [], version: 0.4 }, 'w'), badInput(/UI-format.*Save \(API Format\)/));
  assert.throws(() => validateWorkflow({}, 'w'), badInput(/no nodes/));
  assert.throws(() => validateWorkflow([], 'w'), badInput(/array/));
  assert.throws(() => validateWorkflow({ '4': { inputs: {} } }, 'w'), badInput(/node 4 has no class_type/));
  assert.throws(() => validateWorkflow({ '4': { class_type: 'SaveImage' } }, 'w'), badInput(/node 4 \(SaveImage\) has no inputs/));
  assert.deepEqual(validateWorkflow(TEMPLATE, 'w'), TEMPLATE);
});

test('loadWorkflowTemplate: inline object or JSON text, then a workflow file, then workflows_dir + workflowName', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'comfy-workflows-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fileWorkflow: ApiWorkflow = { '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'from-file' } } };
  const namedWorkflow: ApiWorkflow = { '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'from-dir' } } };
  await writeFile(join(dir, 'downloaded.json'), JSON.stringify(fileWorkflow));
  await writeFile(join(dir, 'sdxl-basic.json'), JSON.stringify(namedWorkflow));
  const file: ResolvedModelFile = { role: 'workflow', filename: 'downloaded.json', path: join(dir, 'downloaded.json'), url: 'https://example.test/w.json' };

  const inline = await loadWorkflowTemplate(job({ cliDefaults: { workflow: TEMPLATE, workflowName: 'sdxl-basic' } }, [file]), { workflowsDir: dir });
  assert.deepEqual(inline.workflow, TEMPLATE);
  const inlineText = await loadWorkflowTemplate(job({ cliDefaults: { workflow: JSON.stringify(TEMPLATE) } }), { workflowsDir: undefined });
  assert.deepEqual(inlineText.workflow, TEMPLATE);

  const fromFile = await loadWorkflowTemplate(job({ cliDefaults: { workflowName: 'sdxl-basic' } }, [file]), { workflowsDir: dir });
  assert.deepEqual(fromFile.workflow, fileWorkflow);
  assert.match(fromFile.origin, /downloaded\.json/);

  for (const name of ['sdxl-basic', 'sdxl-basic.json']) {
    const named = await loadWorkflowTemplate(job({ cliDefaults: { workflowName: name } }), { workflowsDir: dir });
    assert.deepEqual(named.workflow, namedWorkflow);
  }
});

test('loadWorkflowTemplate: what is missing, and whose move it is to fix it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'comfy-workflows-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'broken.json'), '{ not json');

  await assert.rejects(loadWorkflowTemplate(job({}), { workflowsDir: dir }), badInput(/names no ComfyUI workflow.*cliDefaults\.workflow/));
  await assert.rejects(loadWorkflowTemplate(job({ cliDefaults: { workflowName: '../etc/passwd' } }), { workflowsDir: dir }), badInput(/plain file name/));
  await assert.rejects(loadWorkflowTemplate(job({ cliDefaults: { workflowName: 'broken' } }), { workflowsDir: dir }), badInput(/not valid JSON/));
  // Another worker may have the workflow: these are retryable, and say which key to set.
  const unavailable = (pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof EngineFailure);
    assert.equal(error.code, 'engine_unavailable');
    assert.equal(error.retryable, true);
    assert.match(error.message, pattern);
    return true;
  };
  await assert.rejects(loadWorkflowTemplate(job({ cliDefaults: { workflowName: 'absent' } }), { workflowsDir: undefined }), unavailable(/workflows_dir = /));
  await assert.rejects(loadWorkflowTemplate(job({ cliDefaults: { workflowName: 'absent' } }), { workflowsDir: dir }), unavailable(/absent\.json/));
});

test('ComfyuiEngineConfig: every key optional with defaults; bad values refused', () => {
  assert.deepEqual(ComfyuiEngineConfig.parse({}), {
    url: 'http://127.0.0.1:8188',
    silenceTimeoutSecs: 60,
    stepTimeoutSecs: 120,
    freeEveryJobs: 10,
    requestTimeoutSecs: 30,
    historyWaitSecs: 10,
  });
  assert.equal(ComfyuiEngineConfig.safeParse({ url: 'ftp://host' }).success, false);
  assert.equal(ComfyuiEngineConfig.safeParse({ freeEveryJobs: -1 }).success, false);
  assert.equal(ComfyuiEngineConfig.safeParse({ silenceTimeoutSecs: 0 }).success, false);
  assert.equal(ComfyuiEngineConfig.parse({ freeEveryJobs: 0 }).freeEveryJobs, 0);
});
