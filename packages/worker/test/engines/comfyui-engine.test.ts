import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { ModelSource, Task, type ImageTask, type ModelSourceInput, type TaskInput } from '@studio-worker/protocol';
import { EngineFailure, toEngineFailure, type EngineContext, type EngineJob, type EngineProgress } from '../../src/engines/engine.ts';
import { comfyPromptId, createComfyuiEngine, fillWorkflow, placeholderValues, type ApiWorkflow, type ComfyuiEngineConfigInput } from '../../src/engines/comfyui/index.ts';
import { FakeComfyUI, TXT2IMG, type FakeBehaviour } from './fakes/comfyui-server.ts';

/** ComfyUI's default txt2img graph, exported with "Save (API Format)", with placeholders. */

interface Harness {
  fake: FakeComfyUI;
  engine: ReturnType<typeof createComfyuiEngine>;
}

async function harness(t: { after(fn: () => Promise<void>): void }, behaviour: Partial<FakeBehaviour> = {}, config: ComfyuiEngineConfigInput = {}): Promise<Harness> {
  const fake = await FakeComfyUI.start(behaviour);
  const engine = createComfyuiEngine({ url: fake.url, ...config }, { log: silentLogger, modelsRoot: tmpdir() });
  t.after(async () => {
    await engine.close();
    await fake.close();
  });
  return { fake, engine };
}

function job(task: TaskInput, source: Partial<ModelSourceInput> = { cliDefaults: { workflow: TXT2IMG } }, jobId = 'job-1'): EngineJob {
  return { jobId, attempt: 1, model: 'sdxl-comfy', task: Task.parse(task), source: ModelSource.parse({ engine: 'comfyui', ...source }), files: [] };
}

/** A context that records progress and lets a test wait for an update it cares about. */
function context(signal: AbortSignal = new AbortController().signal, log = silentLogger) {
  const updates: EngineProgress[] = [];
  const waiters: Array<{ match: (update: EngineProgress) => boolean; resolve: () => void }> = [];
  const ctx: EngineContext = {
    signal,
    log,
    workDir: tmpdir(),
    progress(update) {
      updates.push(update);
      for (const waiter of waiters.filter((w) => w.match(update))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
  };
  const progressWhere = (match: (update: EngineProgress) => boolean) =>
    new Promise<void>((resolve) => {
      if (updates.some(match)) resolve();
      else waiters.push({ match, resolve });
    });
  return { ctx, updates, progressWhere };
}

function failure(check: (error: EngineFailure) => void) {
  return (error: unknown) => {
    assert.ok(error instanceof EngineFailure, `expected an EngineFailure, got ${error instanceof Error ? error.stack : String(error)}`);
    check(error);
    return true;
  };
}

test('success: placeholders are filled into the prompt ComfyUI receives, and its PNG comes back at the task size', async (t) => {
  const { fake, engine } = await harness(t);
  const result = await engine.run(
    job({ kind: 'image', prompt: 'a red fox', negativePrompt: 'blurry', width: 96, height: 64, steps: 6, seed: 42, cfgScale: 5.5, samplingMethod: 'euler_a' }),
    context().ctx,
  );

  assert.equal(fake.prompts.length, 1);
  const received = fake.prompts[0]!;
  assert.equal(received.workflow['6']?.inputs.text, 'a red fox, highly detailed');
  assert.equal(received.workflow['7']?.inputs.text, 'blurry');
  assert.deepEqual(received.workflow['3']?.inputs, { ...TXT2IMG['3']!.inputs, seed: 42, steps: 6, cfg: 5.5, sampler_name: 'euler_ancestral' });
  assert.deepEqual(received.workflow['5']?.inputs, { width: 96, height: 64, batch_size: 1 });
  // Our id, as a UUID ComfyUI accepts, and the client id of the socket that was open before the POST.
  assert.equal(received.promptId, comfyPromptId('job-1', 1));
  assert.equal(received.body.prompt_id, comfyPromptId('job-1', 1));
  assert.ok(received.clientId !== undefined && fake.wsConnections.includes(received.clientId));
  assert.ok(fake.requests.indexOf('POST /prompt') > fake.requests.indexOf('POST /history'), 'a stale history entry for the id is dropped before queueing');

  assert.equal(result.type, 'file');
  assert.ok(result.type === 'file');
  assert.equal(result.ext, 'png');
  const meta = await sharp(result.bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 96, 64]);
  assert.ok(fake.requests.includes('GET /view'));
});

test('progress: ComfyUI events become queued → loading → generating steps → encoding updates', async (t) => {
  const { engine } = await harness(t, { previews: true });
  const { ctx, updates } = context();
  await engine.run(job({ kind: 'image', prompt: 'steps', width: 32, height: 32, steps: 5 }), ctx);

  const phases = updates.map((u) => u.phase);
  for (const phase of ['queued', 'loading', 'generating', 'encoding'] as const) assert.ok(phases.includes(phase), `no ${phase} update in ${phases.join(',')}`);
  const steps = updates.filter((u) => u.step !== undefined && u.preview === undefined);
  assert.deepEqual(
    steps.map((u) => [u.step, u.total, u.fraction]),
    [1, 2, 3, 4, 5].map((step) => [step, 5, step / 5]),
  );
  // ComfyUI's binary preview frames (event 1, image type 1): each step's JPEG, with that step.
  const previews = updates.filter((u) => u.preview !== undefined);
  assert.deepEqual(previews.map((u) => [u.step, u.preview?.mime]), [1, 2, 3, 4, 5].map((step) => [step, 'image/jpeg']));
  const first = await sharp(previews[0]?.preview?.bytes ?? new Uint8Array()).metadata();
  assert.deepEqual([first.format, first.width], ['jpeg', 64]);
  assert.ok(steps.every((u) => u.phase === 'generating' && /node 3 \(KSampler\) step/.test(u.message ?? '')));
  assert.ok(updates.some((u) => u.phase === 'loading' && /CheckpointLoaderSimple/.test(u.message ?? '')), 'loader nodes are the loading phase');
  assert.ok(phases.lastIndexOf('encoding') > phases.lastIndexOf('generating'));
});

test('cancel mid-generation: /interrupt names our prompt, ComfyUI stops it, and the run ends within 1 s', async (t) => {
  const { fake, engine } = await harness(t, { stepMs: 100, steps: 100 });
  const controller = new AbortController();
  const { ctx, progressWhere } = context(controller.signal);
  const run = engine.run(job({ kind: 'image', prompt: 'slow', width: 32, height: 32 }), ctx);
  await progressWhere((u) => u.step === 2);

  const started = performance.now();
  controller.abort(new Error('cancelled by the studio'));
  const error = await run.then(
    () => assert.fail('a cancelled run must not return a result'),
    (e: unknown) => e,
  );
  const elapsed = performance.now() - started;
  // Far below how long the job would run (or forever): the abort took effect. The 1 s
  // target is met with room to spare when the machine is quiet; a loaded CI box gets slack.
  assert.ok(elapsed < 3_000, `run ended ${elapsed.toFixed(0)} ms after the abort`);
  assert.equal(toEngineFailure(error, controller.signal).code, 'cancelled');

  const ours = comfyPromptId('job-1', 1);
  assert.deepEqual(fake.interrupts, [{ promptId: ours, stopped: ours }]);
  const history = await fake.waitFor(() => fake.historyOf(ours), 'the interrupted prompt in the history');
  const messages = (history.status as { messages: Array<[string, unknown]> }).messages.map(([event]) => event);
  assert.ok(messages.includes('execution_interrupted'));
});

test('cancel while queued behind another client: removed from the queue, the other client’s prompt keeps running', async (t) => {
  const { fake, engine } = await harness(t, { stepMs: 50, steps: 200 });
  // Someone else's long prompt occupies ComfyUI.
  const theirs = fillWorkflow(TXT2IMG, placeholderValues(Task.parse({ kind: 'image', prompt: 'theirs' }) as ImageTask, {}).values);
  const response = await fetch(`${fake.url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: theirs, client_id: 'someone-else' }) });
  assert.equal(response.status, 200);
  const foreign = (await response.json()) as { prompt_id: string };
  await fake.waitFor(() => (fake.runningPromptId === foreign.prompt_id ? true : undefined), 'the foreign prompt to run');

  const controller = new AbortController();
  const { ctx } = context(controller.signal);
  const run = engine.run(job({ kind: 'image', prompt: 'waits', width: 32, height: 32 }), ctx);
  const ours = comfyPromptId('job-1', 1);
  await fake.waitFor(() => (fake.prompts.some((p) => p.promptId === ours) ? true : undefined), 'our prompt to be queued');
  const started = performance.now();
  controller.abort(new Error('cancelled'));
  await assert.rejects(run);
  assert.ok(performance.now() - started < 1000);

  assert.ok(fake.queueDeletes.some((ids) => ids.includes(ours)));
  assert.deepEqual(fake.interrupts, [], 'a prompt never seen running is not interrupted (that could stop someone else’s)');
  assert.equal(fake.runningPromptId, foreign.prompt_id);
  await fetch(`${fake.url}/interrupt`, { method: 'POST', body: '{}' });
  await fake.waitFor(() => fake.historyOf(foreign.prompt_id), 'the foreign prompt to end');
  assert.equal(fake.historyOf(ours), undefined, 'our prompt never ran');
});

test('execution_error: a retryable engine_error naming the node and carrying the exception', async (t) => {
  const { engine } = await harness(t, { crashAtStep: 2 });
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'oom', width: 32, height: 32, steps: 4 }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'engine_error');
      assert.equal(error.retryable, true);
      assert.match(error.message, /node 3 \(KSampler\)/);
      assert.match(error.message, /torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate 2\.00 GiB/);
    }),
  );
});

test('400 node_errors: bad_input, not retryable, naming the node and ComfyUI’s reason', async (t) => {
  const { fake, engine } = await harness(t);
  const broken: ApiWorkflow = { ...TXT2IMG, '4': { class_type: 'BrokenNode', inputs: { ckpt_name: 'missing.safetensors' } } };
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'x' }, { cliDefaults: { workflow: broken } }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'bad_input');
      assert.equal(error.retryable, false);
      assert.match(error.message, /Prompt outputs failed validation/);
      assert.match(error.message, /node 4 \(BrokenNode\): Value not in list: ckpt_name: 'missing\.safetensors' not in \[\]/);
    }),
  );
  assert.equal(fake.interrupts.length, 0);
  assert.equal(fake.queueDeletes.filter((ids) => ids.length > 0).length, 1, 'only the pre-queue cleanup; a refused prompt needs no cancel');
});

test('unknown placeholder: bad_input before anything reaches ComfyUI', async (t) => {
  const { fake, engine } = await harness(t);
  const workflow: ApiWorkflow = { ...TXT2IMG, '6': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}} {{style}}', clip: ['4', 1] } } };
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'x' }, { cliDefaults: { workflow } }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'bad_input');
      assert.match(error.message, /\{\{style\}\} in node 6/);
    }),
  );
  assert.equal(fake.prompts.length, 0);
});

test('silent WebSocket: the watchdog finds the finished prompt over HTTP and still returns its image', async (t) => {
  const { fake, engine } = await harness(t, { silent: true, stepMs: 40, steps: 8 }, { silenceTimeoutSecs: 0.15 });
  const { ctx, updates } = context();
  const result = await engine.run(job({ kind: 'image', prompt: 'quiet', width: 48, height: 40 }), ctx);

  assert.ok(result.type === 'file');
  const meta = await sharp(result.bytes).metadata();
  assert.deepEqual([meta.width, meta.height], [48, 40]);
  assert.equal(updates.filter((u) => u.phase === 'generating').length, 0, 'no events came over the socket');
  const ours = comfyPromptId('job-1', 1);
  assert.ok(fake.requests.includes(`GET /history/${ours}`));
  assert.ok(fake.requests.includes('GET /queue'), 'the watchdog asked the queue while the prompt still ran');
  const clientId = fake.prompts[0]!.clientId!;
  assert.ok(fake.wsConnections.filter((id) => id === clientId).length >= 2, 'the socket was reopened under the same client id');
});

test('history lagging behind the done event: polled until ComfyUI files it', async (t) => {
  const { fake, engine } = await harness(t, { historyDelayMs: 300 });
  const result = await engine.run(job({ kind: 'image', prompt: 'late', width: 32, height: 32 }), context().ctx);
  assert.ok(result.type === 'file');
  const ours = comfyPromptId('job-1', 1);
  assert.ok(fake.requests.filter((r) => r === `GET /history/${ours}`).length >= 2, 'history was asked again after an empty answer');
});

test('step watchdog: a prompt with no event for step_timeout_secs is interrupted and fails retryably', async (t) => {
  const { fake, engine } = await harness(t, { stepMs: 5_000, steps: 3 }, { stepTimeoutSecs: 0.3 });
  const started = performance.now();
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'stuck', width: 32, height: 32 }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'engine_error');
      assert.equal(error.retryable, true);
      assert.match(error.message, /no progress for 0\.3 s in node 3 \(KSampler\)/);
    }),
  );
  assert.ok(performance.now() - started < 4_000, 'gave up long before the step would have ended');
  const ours = comfyPromptId('job-1', 1);
  assert.deepEqual(fake.interrupts, [{ promptId: ours, stopped: ours }]);
});

test('ComfyUI going away mid-job: a retryable failure that says the connection was refused', async (t) => {
  const { fake, engine } = await harness(t, { stepMs: 50, steps: 100 });
  const { ctx, progressWhere } = context();
  const run = engine.run(job({ kind: 'image', prompt: 'crash', width: 32, height: 32 }), ctx);
  await progressWhere((u) => u.step === 1);
  await fake.goDown();
  await assert.rejects(
    run,
    failure((error) => {
      assert.equal(error.code, 'engine_unavailable');
      assert.equal(error.retryable, true);
      assert.match(error.message, /ECONNREFUSED/);
    }),
  );
});

test('ComfyUI not running when the job starts: engine_unavailable, retryable, with the address', async (t) => {
  const { fake, engine } = await harness(t);
  await fake.goDown();
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'nobody home', width: 16, height: 16 }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'engine_unavailable');
      assert.equal(error.retryable, true);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${fake.port}.*ECONNREFUSED`));
    }),
  );
});

test('ComfyUI restarted mid-job: the reconnected watchdog finds the prompt gone and fails retryably', async (t) => {
  const { fake, engine } = await harness(t, { stepMs: 50, steps: 100 });
  const { ctx, progressWhere } = context();
  const run = engine.run(job({ kind: 'image', prompt: 'restart', width: 32, height: 32 }), ctx);
  await progressWhere((u) => u.step === 1);
  fake.restart();
  await assert.rejects(
    run,
    failure((error) => {
      assert.equal(error.code, 'engine_error');
      assert.equal(error.retryable, true);
      assert.match(error.message, /no longer knows prompt .*restarted or its queue was cleared/);
    }),
  );
  const clientId = fake.prompts[0]!.clientId!;
  assert.ok(fake.wsConnections.filter((id) => id === clientId).length >= 2, 'it reconnected before asking');
});

test('an interrupt from someone else (the ComfyUI UI’s Cancel) fails the job retryably', async (t) => {
  const { fake, engine } = await harness(t, { stepMs: 50, steps: 100 });
  const { ctx, progressWhere } = context();
  const run = engine.run(job({ kind: 'image', prompt: 'stopped by a human', width: 32, height: 32 }), ctx);
  await progressWhere((u) => u.step === 1);
  await fetch(`${fake.url}/interrupt`, { method: 'POST' });
  await assert.rejects(
    run,
    failure((error) => {
      assert.equal(error.code, 'engine_error');
      assert.equal(error.retryable, true);
      assert.match(error.message, /interrupted the prompt in node 3 \(KSampler\)/);
    }),
  );
});

test('/free every free_every_jobs jobs, with ComfyUI’s body', async (t) => {
  const { fake, engine } = await harness(t, {}, { freeEveryJobs: 2 });
  for (let i = 1; i <= 5; i++) await engine.run(job({ kind: 'image', prompt: `job ${i}`, width: 16, height: 16 }, undefined, `job-${i}`), context().ctx);
  assert.deepEqual(
    fake.frees.map((f) => f.afterPrompts),
    [2, 4],
  );
  for (const free of fake.frees) assert.deepEqual(free.body, { unload_models: false, free_memory: true });
});

test('probe: available with version and device; unreachable or not ComfyUI → unavailable with the fix', async (t) => {
  const { engine } = await harness(t);
  const up = await engine.probe();
  assert.ok(up.available, JSON.stringify(up));
  assert.match(up.detail ?? '', /ComfyUI 0\.3\.99-fake at http:\/\/127\.0\.0\.1:\d+ on cuda:0 NVIDIA GeForce RTX 4090/);
  assert.match(up.detail ?? '', /GiB VRAM free/);

  const closedPort = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
  const down = await createComfyuiEngine({ url: `http://127.0.0.1:${closedPort}` }, { log: silentLogger, modelsRoot: tmpdir() }).probe();
  assert.equal(down.available, false);
  assert.ok(!down.available);
  assert.match(down.reason, new RegExp(`127\\.0\\.0\\.1:${closedPort}`));
  assert.match(down.reason, /ECONNREFUSED/);
  assert.match(down.reason, /\[engines\.comfyui\] url/);

  const notComfy = createServer((_req, res) => res.writeHead(404).end('no such route'));
  await new Promise<void>((resolve) => notComfy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => notComfy.close(() => resolve())));
  const wrong = await createComfyuiEngine({ url: `http://127.0.0.1:${(notComfy.address() as AddressInfo).port}` }, { log: silentLogger, modelsRoot: tmpdir() }).probe();
  assert.ok(!wrong.available);
  assert.match(wrong.reason, /not answering like ComfyUI.*HTTP 404/);
});

test('a ComfyUI that picks its own prompt ids is followed under the id it reports', async (t) => {
  const { fake, engine } = await harness(t, { ignoreClientPromptId: true });
  const result = await engine.run(job({ kind: 'image', prompt: 'old server', width: 24, height: 24 }), context().ctx);
  assert.ok(result.type === 'file');
  assert.notEqual(fake.prompts[0]!.promptId, comfyPromptId('job-1', 1));
  assert.ok(fake.requests.includes(`GET /history/${fake.prompts[0]!.promptId}`));
});

test('the attempt, when the job carries one, gives each attempt its own prompt id', async (t) => {
  const { fake, engine } = await harness(t);
  await engine.run({ ...job({ kind: 'image', prompt: 'retry', width: 16, height: 16 }), attempt: 2 } as EngineJob, context().ctx);
  assert.equal(fake.prompts[0]!.promptId, comfyPromptId('job-1', 2));
});

test('random seed: drawn when the task has none, sent to ComfyUI, and reported in the log', async (t) => {
  const { fake, engine } = await harness(t);
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  await engine.run(job({ kind: 'image', prompt: 'any seed', width: 16, height: 16 }), context(undefined, log).ctx);
  const seed = fake.prompts[0]!.workflow['3']?.inputs.seed;
  assert.equal(typeof seed, 'number');
  const logged = lines.find((line) => line.op === 'comfyui' && line.seed !== undefined);
  assert.ok(logged, 'a log line carries the seed');
  assert.equal(logged.seed, seed);
  assert.equal(logged.randomSeed, true);
  assert.match(String(logged.msg), /random/);
});

test('workflows_dir + workflowName: the template is read from the operator’s folder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'comfy-workflows-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'sdxl-basic.json'), JSON.stringify(TXT2IMG));
  const { fake, engine } = await harness(t, {}, { workflowsDir: dir });
  const result = await engine.run(job({ kind: 'image', prompt: 'from a folder', width: 40, height: 24 }, { cliDefaults: { workflowName: 'sdxl-basic' } }), context().ctx);
  assert.ok(result.type === 'file');
  assert.equal(fake.prompts[0]!.workflow['6']?.inputs.text, 'from a folder, highly detailed');
  assert.deepEqual([(await sharp(result.bytes).metadata()).width, (await sharp(result.bytes).metadata()).height], [40, 24]);
});

test('video: an animated WebP from SaveAnimatedWEBP, with {{frames}} from seconds × fps', async (t) => {
  const { fake, engine } = await harness(t);
  const workflow: ApiWorkflow = {
    ...TXT2IMG,
    '5': { class_type: 'EmptyLatentImage', inputs: { width: '{{width}}', height: '{{height}}', batch_size: '{{frames}}' } },
    '9': { class_type: 'SaveAnimatedWEBP', inputs: { filename_prefix: 'clip', fps: '{{fps}}', images: ['8', 0] } },
  };
  const result = await engine.run(job({ kind: 'video', prompt: 'waves', seconds: 0.75, fps: 4, width: 32, height: 24 }, { cliDefaults: { workflow } }), context().ctx);
  assert.equal(fake.prompts[0]!.workflow['5']?.inputs.batch_size, 3);
  assert.ok(result.type === 'file');
  assert.equal(result.ext, 'webp');
  const meta = await sharp(result.bytes, { animated: true }).metadata();
  assert.deepEqual([meta.format, meta.pages, meta.width, meta.pageHeight], ['webp', 3, 32, 24]);
});

test('a workflow without an output node is refused by ComfyUI as bad input', async (t) => {
  const { engine } = await harness(t);
  const { '9': _save, ...noOutput } = TXT2IMG;
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'x' }, { cliDefaults: { workflow: noOutput } }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'bad_input');
      assert.match(error.message, /Prompt has no outputs/);
    }),
  );
});

test('non-image tasks and image inputs are refused without touching ComfyUI', async (t) => {
  const { fake, engine } = await harness(t);
  await assert.rejects(
    engine.run(job({ kind: 'llm', messages: [{ role: 'user', content: 'hi' }] }), context().ctx),
    failure((error) => assert.equal(error.code, 'bad_input')),
  );
  await assert.rejects(
    engine.run(job({ kind: 'image', prompt: 'edit', initImageUrl: 'https://studio.test/in.png' }), context().ctx),
    failure((error) => {
      assert.equal(error.code, 'bad_input');
      assert.match(error.message, /init, mask or reference images/);
    }),
  );
  assert.equal(fake.requests.length, 0);
  assert.deepEqual([...engine.kinds], ['image', 'video']);
  assert.equal(engine.name, 'comfyui');
  assert.deepEqual(engine.advertisedModels(), {});
});
