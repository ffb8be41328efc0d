import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@studio-worker/log';
import { createA1111Engine, type A1111EngineConfigInput } from '../../src/engines/a1111/index.ts';
import { FakeA1111 } from './fakes/a1111-server.ts';
import { capturedLogger, failureOf, imageJob, recordingContext } from './fakes/a1111-harness.ts';

function engineFor(fake: FakeA1111, config: Partial<A1111EngineConfigInput> = {}, log = silentLogger) {
  return createA1111Engine({ url: fake.url, progressPollMs: 20, ...config }, { log });
}

const job = (task: Parameters<typeof imageJob>[0] = { prompt: 'p', width: 32, height: 32 }, cliDefaults: Record<string, unknown> = {}) =>
  imageJob(task, { engine: 'a1111', cliDefaults }, 'sd15-base');

test('watchdog: progress frozen for step_timeout_secs → /interrupt, then a retryable engine_error that says why', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 10 });
  t.after(() => fake.close());
  fake.script({ kind: 'stall', afterSteps: 3 });
  const engine = engineFor(fake, { stepTimeoutSecs: 0.3 });
  const started = Date.now();

  const failure = await failureOf(engine.run(job({ prompt: 'p', steps: 20, width: 32, height: 32 }), recordingContext().ctx));

  assert.equal(failure.code, 'engine_error');
  assert.equal(failure.retryable, true);
  assert.match(failure.message, /made no progress for 0\.3 s \(step_timeout_secs\)/);
  assert.equal(fake.interrupts, 1);
  assert.ok(Date.now() - started >= 300, 'not before the timeout');
});

test('the watchdog does not fire on a slow job that keeps moving', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 100 });
  t.after(() => fake.close());
  const engine = engineFor(fake, { stepTimeoutSecs: 1 });
  // 15 × 100 ms: longer than the watchdog's 1 s in all, but never 1 s without a step.
  const result = await engine.run(job({ prompt: 'p', steps: 15, width: 32, height: 32 }), recordingContext().ctx);
  assert.equal(result.type, 'file');
  assert.equal(fake.interrupts, 0);
});

test('timeout_secs: a job still running at the deadline is interrupted and fails as a retryable timeout', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 50 });
  t.after(() => fake.close());
  const engine = engineFor(fake, { timeoutSecs: 0.3 });
  const failure = await failureOf(engine.run(job({ prompt: 'p', steps: 100, width: 32, height: 32 }), recordingContext().ctx));
  assert.equal(failure.code, 'timeout');
  assert.equal(failure.retryable, true);
  assert.match(failure.message, /did not finish within 0\.3 s \(timeout_secs\)/);
  assert.equal(fake.interrupts, 1);
});

test('4xx: FastAPI’s 422 validation body becomes bad_input naming the field; an unknown sampler (which A1111 1.9+ silently replaces) fails before generating', async (t) => {
  const fake = await FakeA1111.start();
  t.after(() => fake.close());
  const engine = engineFor(fake);
  fake.script({ kind: 'answer', status: 422, body: { detail: [{ loc: ['body', 'cfg_scale'], msg: 'value is not a valid float', type: 'type_error.float' }] } });

  const invalid = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(invalid.code, 'bad_input');
  assert.equal(invalid.retryable, false);
  assert.equal(invalid.message, 'A1111 rejected the txt2img request (422): cfg_scale: value is not a valid float');

  const generations = fake.finished.length;
  const sampler = await failureOf(engine.run(job({ prompt: 'p', samplingMethod: 'Euler Ancestral Turbo' }), recordingContext().ctx));
  assert.equal(sampler.code, 'bad_input');
  assert.equal(sampler.retryable, false);
  assert.match(sampler.message, /has no sampler "Euler Ancestral Turbo" \(it would silently use its default instead\); it has: DPM\+\+ 2M, /);
  assert.equal(fake.finished.length, generations, 'nothing was generated with the wrong sampler');
  await engine.run(job({ prompt: 'p', samplingMethod: 'DPM++ 2M Karras', width: 32, height: 32 }), recordingContext().ctx);
  assert.equal(fake.samplersUsed.at(-1), 'DPM++ 2M', 'a sampler with a scheduler suffix is known');
});

test('5xx: A1111’s exception body becomes a retryable engine_error carrying the error', async (t) => {
  const fake = await FakeA1111.start();
  t.after(() => fake.close());
  fake.script({ kind: 'answer', status: 500, body: { error: 'OutOfMemoryError', detail: '', body: '', errors: 'CUDA out of memory. Tried to allocate 2.00 GiB' } });
  const failure = await failureOf(engineFor(fake).run(job(), recordingContext().ctx));
  assert.equal(failure.code, 'engine_error');
  assert.equal(failure.retryable, true);
  assert.match(failure.message, /\(500\): OutOfMemoryError: CUDA out of memory/);
});

test('a WebUI that drops the connection mid-generation, or answers without an image, is a retryable engine_error', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 10 });
  t.after(() => fake.close());
  const engine = engineFor(fake);
  fake.script({ kind: 'drop', afterSteps: 2 });
  const dropped = await failureOf(engine.run(job({ prompt: 'p', steps: 10, width: 32, height: 32 }), recordingContext().ctx));
  assert.equal(dropped.code, 'engine_error');
  assert.equal(dropped.retryable, true);
  assert.match(dropped.message, /cannot reach A1111 .*(socket|closed|reset)/i);

  fake.script({ kind: 'answer', status: 200, body: { images: [], parameters: {}, info: '{}' } });
  const empty = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(empty.code, 'engine_error');
  assert.equal(empty.retryable, true);
  assert.match(empty.message, /without an image/);
});

test('connection refused: the run is a retryable engine_error, the probe says to start the WebUI with --api', async () => {
  const fake = await FakeA1111.start();
  const engine = engineFor(fake);
  await fake.close();
  const failure = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(failure.code, 'engine_error');
  assert.equal(failure.retryable, true);
  assert.match(failure.message, /cannot reach A1111 at http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED/);
  const probe = await engine.probe();
  assert.equal(probe.available, false);
  assert.ok(!probe.available);
  assert.match(probe.reason, /cannot reach A1111 .*ECONNREFUSED.*start the WebUI with --api, or set \[engines\.a1111\] url/);
});

test('probe: available with the loaded checkpoint; a WebUI without --api is unavailable and says so', async (t) => {
  const fake = await FakeA1111.start();
  t.after(() => fake.close());
  const engine = engineFor(fake);
  assert.deepEqual(await engine.probe(), { available: true, detail: `A1111 at ${fake.url}, checkpoint sd15-base.safetensors [a1b2c3d4e5]` });
  assert.deepEqual(engine.advertisedModels(), {});
  assert.deepEqual([engine.name, [...engine.kinds]], ['a1111', ['image']]);

  fake.apiEnabled = false;
  const probe = await engine.probe();
  assert.ok(!probe.available);
  assert.match(probe.reason, /has no \/sdapi\/v1 API \(404\): start the WebUI with --api/);
  const failure = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(failure.code, 'engine_unavailable');
  assert.equal(failure.retryable, false);
});

test('--api-auth: the right credentials on every route; wrong ones make the probe and the run say what to set', async (t) => {
  const fake = await FakeA1111.start({ stepMs: 20, auth: { username: 'studio', password: 'hunter2-secret' } });
  t.after(() => fake.close());
  const { log, lines } = capturedLogger();

  const good = engineFor(fake, { username: 'studio', password: 'hunter2-secret' }, log);
  assert.equal((await good.probe()).available, true);
  assert.equal((await good.run(job({ prompt: 'p', steps: 10, width: 32, height: 32 }), recordingContext(log).ctx)).type, 'file');
  const expected = `Basic ${Buffer.from('studio:hunter2-secret').toString('base64')}`;
  assert.ok(fake.requests('/sdapi/v1/progress').length > 0, 'progress was polled');
  assert.ok(fake.received.every((r) => r.headers.authorization === expected), 'every request carried the credentials');

  const wrong = engineFor(fake, { username: 'studio', password: 'wrong' }, log);
  const probe = await wrong.probe();
  assert.ok(!probe.available);
  assert.match(probe.reason, /refused the credentials \(401\): check \[engines\.a1111\] username \("studio"\) and password/);
  const failure = await failureOf(wrong.run(job(), recordingContext(log).ctx));
  assert.equal(failure.code, 'engine_unavailable');
  assert.equal(failure.retryable, false);

  const none = await engineFor(fake).probe();
  assert.ok(!none.available);
  assert.match(none.reason, /set \[engines\.a1111\] username and password/);
  assert.ok(lines.length > 0, 'the engine logged');
  assert.ok(lines.every((line) => !line.includes('hunter2-secret')), 'the password never reached the log');
});
