import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { silentLogger } from '@studio-worker/log';
import { createA1111Engine } from '../../src/engines/a1111/index.ts';
import type { A1111EngineConfigInput } from '../../src/engines/a1111/index.ts';
import { FakeA1111, fakeCheckpoint } from './fakes/a1111-server.ts';
import { inputUrlPolicy } from '../../src/platform/url-policy.ts';
import { FileServer, failureOf, imageJob, recordingContext } from './fakes/a1111-harness.ts';

function engineFor(fake: FakeA1111, config: Partial<A1111EngineConfigInput> = {}) {
  return createA1111Engine({ url: fake.url, progressPollMs: 20, ...config }, { log: silentLogger });
}

const a1111 = (cliDefaults: Record<string, unknown> = {}) => ({ engine: 'a1111', cliDefaults });
/** A job for the checkpoint the fake loads first, unless cliDefaults.checkpoint names another. */
const a1111Job = (task: Parameters<typeof imageJob>[0], source = a1111()) => imageJob(task, source, 'sd15-base');

test('txt2img: the request A1111 expects, progress while it loads and samples, and a WebP of the requested size', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 5 });
  t.after(() => fake.close());
  fake.hold = { load: true };
  const engine = engineFor(fake);
  const { ctx, updates, changes } = recordingContext();
  const job = a1111Job(
    { prompt: 'a red fox in snow', negativePrompt: 'blurry', width: 96, height: 64, seed: 42, cfgScale: 5.5, samplingMethod: 'euler_a', ext: 'webp' },
    a1111({ checkpoint: 'sdxl-turbo', steps: 8 }),
  );
  const running = engine.run(job, ctx);

  // The checkpoint switch: A1111 is in state.begin() (job_count -1) until the weights are loaded.
  await changes.waitFor(() => updates.find((u) => u.phase === 'loading'), 'a loading update');
  fake.hold = { step: 4 };
  fake.release();
  // Paused before step 4: A1111 reports sampling_step 3 of 8.
  const sampling = await changes.waitFor(() => updates.find((u) => u.phase === 'generating' && u.step === 3), 'generating step 3');
  assert.equal(sampling.total, 8);
  assert.ok(sampling.fraction !== undefined && sampling.fraction > 0.3 && sampling.fraction < 0.6, `fraction ${sampling.fraction}`);
  fake.release();
  const result = await running;

  assert.equal(result.type, 'file');
  assert.ok(result.type === 'file');
  assert.equal(result.ext, 'webp');
  const meta = await sharp(result.bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 96, 64]);

  const [request] = fake.requests('/sdapi/v1/txt2img');
  assert.ok(request);
  assert.equal(fake.requests('/sdapi/v1/img2img').length, 0);
  assert.deepEqual(request.body, {
    prompt: 'a red fox in snow',
    negative_prompt: 'blurry',
    width: 96,
    height: 64,
    steps: 8,
    cfg_scale: 5.5,
    seed: 42,
    sampler_name: 'Euler a',
    batch_size: 1,
    n_iter: 1,
    send_images: true,
    save_images: false,
    override_settings: { sd_model_checkpoint: 'sdxl-turbo' },
    override_settings_restore_afterwards: false,
  });
  assert.equal(fake.loaded?.model_name, 'sdxl-turbo', 'the override switched the checkpoint');
  const polls = fake.requests('/sdapi/v1/progress');
  assert.ok(polls.filter((r) => r.query.get('skip_current_image') === 'true').length > polls.length / 2, 'most polls skip current_image (it is asked for once a second)');
  const steps = updates.filter((u) => u.phase === 'generating').map((u) => u.step ?? -1);
  assert.deepEqual(steps, [...steps].sort((a, b) => a - b), 'steps only move forward');
  assert.equal(updates.at(-1)?.phase, 'encoding');
});

test('png requested: A1111’s PNG comes back untouched; jpg is converted', async (t) => {
  const fake = await FakeA1111.start();
  t.after(() => fake.close());
  const engine = engineFor(fake);
  const png = await engine.run(a1111Job({ prompt: 'p', width: 48, height: 32, ext: 'png' }, a1111()), recordingContext().ctx);
  assert.ok(png.type === 'file');
  assert.equal(png.ext, 'png');
  const [answer] = fake.finished;
  assert.ok(answer);
  assert.deepEqual(await sharp(png.bytes).metadata().then((m) => [m.format, m.width, m.height]), ['png', 48, 32]);
  const jpg = await engine.run(a1111Job({ prompt: 'p', width: 48, height: 32, ext: 'jpg' }, a1111()), recordingContext().ctx);
  assert.ok(jpg.type === 'file');
  assert.equal(jpg.ext, 'jpg');
  assert.equal((await sharp(jpg.bytes).metadata()).format, 'jpeg');
});

test('img2img: init image from a data: URL and mask from loopback http, base64 into init_images/mask, denoise', async (t) => {
  const fake = await FakeA1111.start();
  const files = await FileServer.start();
  t.after(() => Promise.all([fake.close(), files.close()]));
  const init = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
  const mask = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 255, g: 255, b: 255 } } }).jpeg().toBuffer();
  files.files.set('/mask.webp', { body: mask, type: 'image/webp' }); // the name lies; the bytes are JPEG
  const engine = engineFor(fake);
  const job = a1111Job(
    { prompt: 'repaint the sky', width: 64, height: 64, denoise: 0.4, ext: 'png', initImageUrl: `data:image/png;base64,${init.toString('base64')}`, maskUrl: `${files.url}/mask.webp` },
    a1111(),
  );

  // The loopback file server is trusted explicitly, as allowed_input_origins would.
  const result = await engine.run(job, { ...recordingContext().ctx, inputUrls: inputUrlPolicy([files.url]) });

  assert.ok(result.type === 'file');
  assert.equal(fake.requests('/sdapi/v1/txt2img').length, 0);
  const [request] = fake.requests('/sdapi/v1/img2img');
  const body = request?.body as Record<string, unknown>;
  assert.deepEqual(body.init_images, [init.toString('base64')]);
  assert.equal(body.mask, mask.toString('base64'));
  assert.equal(body.denoising_strength, 0.4);
  assert.equal(fake.finished[0]?.route, 'img2img');
});

test('input images: a URL the policy refuses, a 404, or bytes that are not an image are bad_input before A1111 is asked', async (t) => {
  const fake = await FakeA1111.start();
  const files = await FileServer.start();
  t.after(() => Promise.all([fake.close(), files.close()]));
  files.files.set('/notes.txt', { body: Buffer.from('hello') });
  const engine = engineFor(fake);
  const cases: Array<[string, RegExp]> = [
    ['http://example.com/cat.png', /must be https/],
    ['file:///etc/passwd', /must be https/],
    [`${files.url}/missing.png`, /answered HTTP 404/],
    [`${files.url}/notes.txt`, /not a PNG, JPEG, WebP/],
    ['data:image/png,not-base64', /must be base64/],
  ];
  for (const [url, message] of cases) {
    const failure = await failureOf(engine.run(a1111Job({ prompt: 'p', initImageUrl: url }, a1111()), { ...recordingContext().ctx, inputUrls: inputUrlPolicy([files.url]) }));
    assert.equal(failure.code, 'bad_input', url);
    assert.equal(failure.retryable, false, url);
    assert.match(failure.message, message, url);
  }
  const maskOnly = await failureOf(engine.run(a1111Job({ prompt: 'p', maskUrl: `${files.url}/m.png` }, a1111()), recordingContext().ctx));
  assert.equal(maskOnly.code, 'bad_input');
  assert.equal(fake.requests('/sdapi/v1/img2img').length + fake.requests('/sdapi/v1/txt2img').length, 0);
});

test('cancel mid-generation: POST /interrupt reaches A1111 and the run rejects as cancelled within 1 s', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 100 });
  t.after(() => fake.close());
  const engine = engineFor(fake);
  const { ctx, controller } = recordingContext();
  const running = engine.run(a1111Job({ prompt: 'slow', steps: 50 }, a1111()), ctx);
  await fake.changes.waitFor(() => (fake.state.sampling_step >= 1 ? true : undefined), 'A1111 to be sampling');

  const abortedAt = Date.now();
  controller.abort(new Error('cancelled by the studio'));
  const failure = await failureOf(running);
  const elapsed = Date.now() - abortedAt;

  assert.equal(failure.code, 'cancelled');
  assert.equal(failure.retryable, false);
  // Far below how long the job would run (or forever): the abort took effect. The 1 s
  // target is met with room to spare when the machine is quiet; a loaded CI box gets slack.
  assert.ok(elapsed < 3_000, `stopped in ${elapsed} ms`);
  assert.equal(fake.interrupts, 1);
  const finished = await fake.changes.waitFor(() => fake.finished[0], 'the interrupted generation to end');
  assert.equal(finished.interrupted, true, 'A1111 ended the generation early');
});

test('one job at a time per server: concurrent runs (even from two engine instances) reach A1111 one after the other', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 20 });
  t.after(() => fake.close());
  const first = engineFor(fake);
  const second = engineFor(fake);
  const a = recordingContext();
  const b = recordingContext();
  const c = recordingContext();

  const results = await Promise.all([
    first.run(a1111Job({ prompt: 'one', steps: 5, width: 32, height: 32 }, a1111()), a.ctx),
    first.run(a1111Job({ prompt: 'two', steps: 5, width: 32, height: 32 }, a1111()), b.ctx),
    second.run(a1111Job({ prompt: 'three', steps: 5, width: 32, height: 32 }, a1111()), c.ctx),
  ]);

  assert.equal(results.length, 3);
  assert.equal(fake.requests('/sdapi/v1/txt2img').length, 3);
  assert.equal(fake.maxGenerationsInFlight, 1, 'A1111 never had two generation requests at once');
  assert.ok([b, c].every((r) => r.updates[0]?.phase === 'queued'), 'the waiting jobs reported queued');
  assert.deepEqual(
    fake.requests('/sdapi/v1/txt2img').map((r) => (r.body as { prompt: string }).prompt),
    ['one', 'two', 'three'],
  );
});

test('cancel while queued behind another job: rejects at once and never reaches A1111', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 30 });
  t.after(() => fake.close());
  const engine = engineFor(fake);
  const first = recordingContext();
  const second = recordingContext();
  const running = engine.run(a1111Job({ prompt: 'first', steps: 10, width: 32, height: 32 }, a1111()), first.ctx);
  const queued = engine.run(a1111Job({ prompt: 'second', width: 32, height: 32 }, a1111()), second.ctx);
  await second.changes.waitFor(() => (second.updates.some((u) => u.phase === 'queued') ? true : undefined), 'the second job to queue');

  const abortedAt = Date.now();
  second.controller.abort(new Error('cancelled'));
  const failure = await failureOf(queued);
  assert.equal(failure.code, 'cancelled');
  assert.ok(Date.now() - abortedAt < 1000);

  const result = await running;
  assert.equal(result.type, 'file');
  assert.deepEqual(
    fake.requests('/sdapi/v1/txt2img').map((r) => (r.body as { prompt: string }).prompt),
    ['first'],
  );
  assert.equal(fake.interrupts, 0, 'the running job was not interrupted');
});

test('checkpoint: an unknown name fails (retryable: another worker may have it) listing what A1111 has; one that appears on refresh is used', async (t) => {
  const fake = await FakeA1111.start({ laterCheckpoints: [fakeCheckpoint('juggernaut-xl', '0123456789')] });
  t.after(() => fake.close());
  const engine = engineFor(fake);

  const missing = await failureOf(engine.run(a1111Job({ prompt: 'p' }, a1111({ checkpoint: 'dreamshaper-8' })), recordingContext().ctx));
  assert.equal(missing.code, 'engine_unavailable');
  assert.equal(missing.retryable, true);
  assert.match(missing.message, /no checkpoint "dreamshaper-8"/);
  assert.match(missing.message, /sd15-base\.safetensors \[a1b2c3d4e5\]/);
  assert.equal(fake.requests('/sdapi/v1/refresh-checkpoints').length, 1);
  assert.equal(fake.requests('/sdapi/v1/txt2img').length, 0, 'A1111 would have loaded its first checkpoint instead');

  const later = await engine.run(a1111Job({ prompt: 'p', width: 32, height: 32 }, a1111({ checkpoint: 'juggernaut-xl [0123456789]' })), recordingContext().ctx);
  assert.equal(later.type, 'file');
  assert.equal(fake.finished.at(-1)?.checkpoint, 'juggernaut-xl.safetensors [0123456789]');
});

test('live previews: /progress current_image (A1111’s live preview) becomes preview updates, fetched at most once a second', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 60, previewEverySteps: 2 });
  t.after(() => fake.close());
  const { ctx, updates } = recordingContext();
  const started = performance.now();
  await engineFor(fake).run(a1111Job({ prompt: 'a harbour', width: 96, height: 64, steps: 40 }), ctx);
  const seconds = (performance.now() - started) / 1000;

  const previews = updates.filter((u) => u.preview !== undefined);
  assert.ok(previews.length >= 2, `previews arrive (${previews.length})`);
  for (const update of previews) {
    assert.equal(update.preview?.mime, 'image/png');
    assert.equal(update.phase, 'generating');
    const meta = await sharp(update.preview?.bytes ?? new Uint8Array()).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 96, 64]);
  }
  const withImage = fake.received.filter((r) => r.path === '/sdapi/v1/progress' && r.query.get('skip_current_image') === 'false');
  assert.ok(withImage.length <= Math.ceil(seconds) + 1, `current_image asked for at most once a second (${withImage.length} in ${seconds.toFixed(1)} s)`);
  assert.ok(fake.received.some((r) => r.path === '/sdapi/v1/progress' && r.query.get('skip_current_image') === 'true'), 'the other polls skip it');
});
