import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { ModelSource, Task, TASK_KINDS, type ModelSourceInput, type TaskInput } from '@studio-worker/protocol';
import { EngineFailure, type EngineContext, type EngineJob, type EngineProgress } from '../../src/engines/engine.ts';
import { createSyntheticEngine, renderSyntheticImage, renderSyntheticWav } from '../../src/engines/synthetic/index.ts';
import { CHILD_RENDER_PIXELS } from '../../src/engines/synthetic/render.ts';

function job(task: TaskInput, source: Partial<ModelSourceInput> = {}): EngineJob {
  return { jobId: 'job-1', attempt: 1, model: 'synthetic-image', task: Task.parse(task), source: ModelSource.parse({ engine: 'synthetic', ...source }), files: [] };
}

/** A context that records progress and lets a test wait for the n-th update. */
function context(signal: AbortSignal = new AbortController().signal) {
  const updates: EngineProgress[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const ctx: EngineContext = {
    signal,
    log: silentLogger,
    workDir: tmpdir(),
    progress(update) {
      updates.push(update);
      for (const waiter of waiters.filter((w) => updates.length >= w.count)) waiter.resolve();
    },
  };
  const progressCount = (count: number) =>
    new Promise<void>((resolve) => {
      if (updates.length >= count) resolve();
      else waiters.push({ count, resolve });
    });
  return { ctx, updates, progressCount };
}

test('identity: name, all five kinds, always available, advertises synthetic + synthetic-<short> and never *', async () => {
  const engine = createSyntheticEngine();
  assert.equal(engine.name, 'synthetic');
  assert.deepEqual([...engine.kinds], [...TASK_KINDS]);
  assert.equal((await engine.probe()).available, true);
  assert.deepEqual(engine.advertisedModels(), {
    image: ['synthetic', 'synthetic-image'],
    llm: ['synthetic', 'synthetic-llm'],
    audio_stt: ['synthetic', 'synthetic-stt'],
    audio_tts: ['synthetic', 'synthetic-tts'],
    video: ['synthetic', 'synthetic-video'],
  });
  assert.ok(Object.values(engine.advertisedModels()).flat().every((model) => !model.includes('*')));
});

test('run image: the helper’s bytes at the task’s size, and one generating progress update', async () => {
  const engine = createSyntheticEngine();
  const { ctx, updates } = context();
  const result = await engine.run(job({ kind: 'image', prompt: 'a red fox', width: 96, height: 64, ext: 'png' }), ctx);
  assert.equal(result.type, 'file');
  assert.ok(result.type === 'file');
  assert.equal(result.ext, 'png');
  const expected = await renderSyntheticImage('a red fox', 96, 64, 'png');
  assert.ok(Buffer.from(result.bytes).equals(Buffer.from(expected.bytes)));
  assert.deepEqual(updates, [{ phase: 'generating', step: 1, total: 1, fraction: 1 }]);
});

test('run image: default ext webp at the default 512×512; jpg comes back as png', async () => {
  const engine = createSyntheticEngine();
  const webp = await engine.run(job({ kind: 'image', prompt: 'defaults' }), context().ctx);
  assert.ok(webp.type === 'file');
  assert.equal(webp.ext, 'webp');
  const meta = await sharp(webp.bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 512, 512]);
  const jpg = await engine.run(job({ kind: 'image', prompt: 'defaults', ext: 'jpg' }), context().ctx);
  assert.ok(jpg.type === 'file');
  assert.equal(jpg.ext, 'png');
});

test('run llm / stt / tts / video through the Engine interface', async () => {
  const engine = createSyntheticEngine();
  const hex = (s: string) => createHash('sha256').update(s).digest('hex');

  const llm = await engine.run(job({ kind: 'llm', messages: [{ role: 'user', content: 'two words' }] }), context().ctx);
  assert.ok(llm.type === 'json');
  assert.deepEqual(llm.json, {
    object: 'chat.completion',
    model: 'synthetic-llm',
    choices: [{ index: 0, message: { role: 'assistant', content: `[synthetic] reply to prompt #${hex('user: two words').slice(0, 16)}` }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 8, total_tokens: 11 },
  });

  const stt = await engine.run(job({ kind: 'audio_stt', inputUrl: 'http://127.0.0.1:1/never-fetched.wav', language: 'de' }), context().ctx);
  assert.ok(stt.type === 'json');
  assert.deepEqual(stt.json, { text: `[synthetic] transcript of ${hex('http://127.0.0.1:1/never-fetched.wav').slice(0, 16)}`, language: 'de', duration: 1 });

  const tts = await engine.run(job({ kind: 'audio_tts', text: 'say this', ext: 'mp3' }), context().ctx);
  assert.ok(tts.type === 'file');
  assert.equal(tts.ext, 'wav');
  assert.ok(Buffer.from(tts.bytes).equals(Buffer.from(renderSyntheticWav('say this'))));

  const video = await engine.run(job({ kind: 'video', prompt: 'waves', width: 128, height: 96 }), context().ctx);
  assert.ok(video.type === 'file');
  assert.equal(video.ext, 'webp');
  const meta = await sharp(video.bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 128, 96]);
});

test('delayMs: ten generating steps in order before the result', async () => {
  const engine = createSyntheticEngine();
  const { ctx, updates } = context();
  const result = await engine.run(job({ kind: 'llm', messages: [{ role: 'user', content: 'slow' }] }, { cliDefaults: { delayMs: 50 } }), ctx);
  assert.equal(result.type, 'json');
  assert.equal(updates.length, 10);
  updates.forEach((update, i) => {
    assert.deepEqual(update, { phase: 'generating', step: i + 1, total: 10, fraction: (i + 1) / 10 });
  });
});

test('delayMs: an abort mid-way rejects with cancelled long before the delay ends and yields no result', async () => {
  const engine = createSyntheticEngine();
  const controller = new AbortController();
  const { ctx, updates } = context(controller.signal);
  const delayMs = 60_000;
  const started = performance.now();
  let produced = false;
  const running = engine.run(job({ kind: 'image', prompt: 'never finished', width: 64, height: 64 }, { cliDefaults: { delayMs } }), ctx).then((result) => {
    produced = true;
    return result;
  });
  // run() is already inside its first 6 s step here: the delay starts synchronously.
  controller.abort(new Error('cancelled by studio'));
  await assert.rejects(running, (error: unknown) => {
    assert.ok(error instanceof EngineFailure);
    assert.equal(error.code, 'cancelled');
    assert.equal(error.retryable, false);
    assert.match(error.message, /cancelled by studio/);
    return true;
  });
  assert.equal(produced, false);
  assert.ok(performance.now() - started < delayMs / 10, 'rejected before even the first step would have ended');
  assert.equal(updates.length, 0);
});

test('delayMs: an abort after some progress stops further steps', async () => {
  const engine = createSyntheticEngine();
  const controller = new AbortController();
  const { ctx, updates, progressCount } = context(controller.signal);
  const running = engine.run(job({ kind: 'llm', messages: [{ role: 'user', content: 'x' }] }, { cliDefaults: { delayMs: 400 } }), ctx);
  await progressCount(2);
  controller.abort(new Error('shutdown'));
  await assert.rejects(running, { name: 'EngineFailure', code: 'cancelled' });
  const seen = updates.length;
  assert.ok(seen >= 2 && seen < 10, `${seen} steps reported before the abort`);
  // No timer of the aborted run is left to report more steps: a fresh 400 ms run completes first.
  const { ctx: other } = context();
  await engine.run(job({ kind: 'llm', messages: [{ role: 'user', content: 'y' }] }, { cliDefaults: { delayMs: 400 } }), other);
  assert.equal(updates.length, seen);
});

test('an already-aborted signal throws at once, without progress', async () => {
  const engine = createSyntheticEngine();
  const controller = new AbortController();
  controller.abort(new Error('timeout'));
  const { ctx, updates } = context(controller.signal);
  await assert.rejects(engine.run(job({ kind: 'audio_tts', text: 'x' }), ctx), { name: 'EngineFailure', code: 'cancelled' });
  assert.equal(updates.length, 0);
});

test('delayMs that is not a positive number is ignored', async () => {
  const engine = createSyntheticEngine();
  for (const delayMs of ['500', -5, 0, Number.NaN, null]) {
    const { ctx, updates } = context();
    await engine.run(job({ kind: 'audio_stt', inputUrl: 'x' }, { cliDefaults: { delayMs } }), ctx);
    assert.deepEqual(updates, [{ phase: 'generating', step: 1, total: 1, fraction: 1 }], `delayMs ${String(delayMs)}`);
  }
});

for (const [kind, side] of [
  ['image', 8192],
  ['video', 4096],
] as const) {
  test(`cancel while rendering a ${side}² ${kind}: the engine stops within 1 s (painting looks at the signal between row bands; a large render runs in a child process the cancel kills)`, async () => {
    const engine = createSyntheticEngine();
    const controller = new AbortController();
    const { ctx } = context(controller.signal);
    const started = performance.now();
    const running = engine.run(job({ kind, prompt: 'a huge canvas', width: side, height: side }), ctx);
    // The cancel is due 300 ms into the render. A render that blocks the event loop delays the
    // cancel itself, so the time counts from when it was due, as a cancel frame would have arrived.
    const dueAt = started + 300;
    let firedAt = 0;
    setTimeout(() => {
      firedAt = performance.now();
      controller.abort(new Error('cancelled by studio'));
    }, 300);
    await assert.rejects(running, { name: 'EngineFailure', code: 'cancelled' });
    const stoppedAt = performance.now();
    assert.ok(firedAt > 0, 'the cancel was delivered');
    assert.ok(stoppedAt - dueAt < 1_000, `cancel → engine stopped took ${Math.round(stoppedAt - dueAt)} ms (the cancel itself fired ${Math.round(firedAt - dueAt)} ms late)`);
  });
}

test('a render above CHILD_RENDER_PIXELS (in its own process) gives the same bytes as one in-process', async () => {
  const side = Math.ceil(Math.sqrt(CHILD_RENDER_PIXELS)) + 1;
  const { ctx } = context();
  const result = await createSyntheticEngine().run(job({ kind: 'image', prompt: 'big and exact', width: side, height: side, ext: 'png' }), ctx);
  assert.equal(result.type, 'file');
  const expected = await renderSyntheticImage('big and exact', side, side, 'png');
  assert.equal(result.type === 'file' && result.ext, 'png');
  assert.ok(result.type === 'file' && Buffer.from(result.bytes).equals(Buffer.from(expected.bytes)), 'identical bytes');
});
