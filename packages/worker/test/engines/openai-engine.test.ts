import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { silentLogger, type Logger } from '@studio-worker/log';
import { createOpenAIEngine, type OpenAIEngineConfigInput } from '../../src/engines/openai/index.ts';
import { FakeImagesServer } from './fakes/openai-images-server.ts';
import { FileServer, capturedLogger, failureOf, imageJob, recordingContext } from './fakes/a1111-harness.ts';
import { inputUrlPolicy } from '../../src/platform/url-policy.ts';

const KEY = 'sk-test-0123456789abcdefSECRET';
const env = { STUDIO_TEST_OPENAI_KEY: KEY };

function engineFor(fake: FakeImagesServer, config: Partial<OpenAIEngineConfigInput> = {}, log: Logger = silentLogger) {
  return createOpenAIEngine({ baseUrl: fake.baseUrl, apiKeyEnv: 'STUDIO_TEST_OPENAI_KEY', ...config }, { log, env });
}

const job = (task: Parameters<typeof imageJob>[0] = { prompt: 'a paper boat', width: 64, height: 64 }, cliDefaults: Record<string, unknown> = {}) =>
  imageJob(task, { engine: 'openai', cliDefaults }, 'studio-model-id');

test('b64_json: OpenAI’s exact request with the bearer key, generating → encoding, a WebP of the requested size', async (t) => {
  const fake = await FakeImagesServer.start({ apiKey: KEY, strict: true });
  t.after(() => fake.close());
  const { ctx, updates } = recordingContext();

  const result = await engineFor(fake).run(job({ prompt: 'a paper boat', negativePrompt: 'rain', seed: 3, width: 96, height: 64, ext: 'webp' }, { model: 'dall-e-3' }), ctx);

  assert.ok(result.type === 'file');
  assert.equal(result.ext, 'webp');
  const meta = await sharp(result.bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 96, 64]);
  const [request] = fake.requests('/v1/images/generations');
  assert.deepEqual(request?.body, { model: 'dall-e-3', prompt: 'a paper boat', n: 1, size: '96x64', response_format: 'b64_json' }, 'no extras unless sendExtras');
  assert.equal(request?.headers.authorization, `Bearer ${KEY}`);
  assert.equal(request?.headers['content-type'], 'application/json');
  assert.deepEqual(updates, [{ phase: 'generating' }, { phase: 'encoding' }]);
});

test('model: cliDefaults.model, else the table’s model, else the studio’s model id', async (t) => {
  const fake = await FakeImagesServer.start({ strict: true });
  t.after(() => fake.close());
  const models = async (config: Partial<OpenAIEngineConfigInput>, cliDefaults: Record<string, unknown>) => {
    await engineFor(fake, { apiKeyEnv: undefined, ...config }).run(job(undefined, cliDefaults), recordingContext().ctx);
    return (fake.requests('/v1/images/generations').at(-1)?.body as { model: string }).model;
  };
  assert.equal(await models({ model: 'table-model' }, { model: 'registry-model' }), 'registry-model');
  assert.equal(await models({ model: 'table-model' }, {}), 'table-model');
  assert.equal(await models({}, {}), 'studio-model-id');
  assert.equal(fake.requests('/v1/images/generations')[0]?.headers.authorization, undefined, 'no key configured, none sent');
});

test('sendExtras: negative_prompt, seed and steps (also as LocalAI’s step) go to lenient servers; a strict one names the field', async (t) => {
  const lenient = await FakeImagesServer.start({ strict: false });
  const strict = await FakeImagesServer.start({ strict: true });
  t.after(() => Promise.all([lenient.close(), strict.close()]));
  const extras = job({ prompt: 'p', negativePrompt: 'fog', seed: 11, width: 32, height: 32 }, { sendExtras: true, steps: 6 });

  await engineFor(lenient).run(extras, recordingContext().ctx);
  const body = lenient.requests('/v1/images/generations')[0]?.body as Record<string, unknown>;
  assert.equal(body.negative_prompt, 'fog');
  assert.equal(body.seed, 11);
  assert.equal(body.steps, 6);
  assert.equal(body.step, 6);

  const failure = await failureOf(engineFor(strict).run(extras, recordingContext().ctx));
  assert.equal(failure.code, 'bad_input');
  assert.equal(failure.retryable, false);
  assert.match(failure.message, /\(400\): Unknown parameter: 'negative_prompt'\. \(negative_prompt: .*cliDefaults\.sendExtras = false\)/);
});

test('response_format: a server that refuses it (gpt-image) works with response_format = "none"', async (t) => {
  const fake = await FakeImagesServer.start({ strict: true, rejects: ['response_format'], defaultFormat: 'b64_json' });
  t.after(() => fake.close());
  const refused = await failureOf(engineFor(fake).run(job(), recordingContext().ctx));
  assert.equal(refused.code, 'bad_input');
  assert.match(refused.message, /Unknown parameter: 'response_format'.*response_format = "none"/);

  const result = await engineFor(fake, { responseFormat: 'none' }).run(job(), recordingContext().ctx);
  assert.equal(result.type, 'file');
  assert.equal('response_format' in (fake.requests('/v1/images/generations').at(-1)?.body as object), false);
});

test('url answers: downloaded from the server itself with the key; a third-party URL never gets the key', async (t) => {
  const fake = await FakeImagesServer.start({ apiKey: KEY });
  const files = await FileServer.start();
  t.after(() => Promise.all([fake.close(), files.close()]));

  const own = await engineFor(fake, { responseFormat: 'url' }).run(job({ prompt: 'p', width: 40, height: 24, ext: 'png' }), recordingContext().ctx);
  assert.ok(own.type === 'file');
  assert.equal(own.ext, 'png');
  assert.deepEqual(await sharp(own.bytes).metadata().then((m) => [m.format, m.width, m.height]), ['png', 40, 24]);
  const download = fake.received.find((r) => r.path.startsWith('/generated/'));
  assert.equal(download?.headers.authorization, `Bearer ${KEY}`, 'the server’s own file route needs the key');

  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).png().toBuffer();
  files.files.set('/cdn/image.png', { body: png, type: 'image/png' });
  fake.script({ kind: 'answer', status: 200, body: { created: 1, data: [{ url: `${files.url}/cdn/image.png` }] } });
  // A URL on another loopback origin is refused unless the operator trusts that origin.
  const untrusted = await failureOf(engineFor(fake).run(job({ prompt: 'p', width: 16, height: 16, ext: 'png' }), recordingContext().ctx));
  assert.equal(untrusted.code, 'engine_error');
  assert.match(untrusted.message, /unusable image URL: .*127\.0\.0\.1 is a loopback address/);
  assert.equal(files.requests.length, 0);
  fake.script({ kind: 'answer', status: 200, body: { created: 1, data: [{ url: `${files.url}/cdn/image.png` }] } });
  const elsewhere = await engineFor(fake).run(job({ prompt: 'p', width: 16, height: 16, ext: 'png' }), { ...recordingContext().ctx, inputUrls: inputUrlPolicy([files.url]) });
  assert.equal(elsewhere.type, 'file');
  assert.equal(files.requests.length, 1);
  assert.equal(files.requests[0]?.headers.authorization, undefined);

  fake.script({ kind: 'answer', status: 200, body: { created: 1, data: [{ url: 'http://example.com/x.png' }] } });
  const insecure = await failureOf(engineFor(fake).run(job(), recordingContext().ctx));
  assert.equal(insecure.code, 'engine_error', 'a bad URL from the server is the server’s failure, not bad input');
  assert.match(insecure.message, /unusable image URL: .*must be https/);
});

test('errors: 401 → engine_unavailable "refused the API key"; 400 → bad_input with error.message; 429/5xx/network/timeout → retryable', async (t) => {
  const fake = await FakeImagesServer.start({ apiKey: KEY });
  t.after(() => fake.close());
  const engine = engineFor(fake);

  const wrongKey = await failureOf(createOpenAIEngine({ baseUrl: fake.baseUrl, apiKey: 'sk-wrong-key-000000' }, { log: silentLogger }).run(job(), recordingContext().ctx));
  assert.equal(wrongKey.code, 'engine_unavailable');
  assert.equal(wrongKey.retryable, false);
  assert.match(wrongKey.message, /^the server refused the API key \(401\): check \[engines\.openai\] api_key$/);

  fake.script({ kind: 'answer', status: 400, body: { error: { message: 'Your request was rejected by the safety system.', type: 'invalid_request_error', param: null, code: 'content_policy_violation' } } });
  const rejected = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(rejected.code, 'bad_input');
  assert.equal(rejected.retryable, false);
  assert.equal(rejected.message, 'the server rejected the request (400): Your request was rejected by the safety system.');

  fake.script({
    kind: 'answer',
    status: 429,
    headers: { 'retry-after': '20' },
    body: { error: { message: 'Rate limit reached for images per minute.', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
  });
  const limited = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(limited.code, 'engine_error');
  assert.equal(limited.retryable, true);
  assert.match(limited.message, /rate limited the request \(429, retry after 20 s\): Rate limit reached/);

  fake.script({ kind: 'answer', status: 500, body: { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } } });
  const crashed = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(crashed.code, 'engine_error');
  assert.equal(crashed.retryable, true);
  assert.match(crashed.message, /failed \(500\): The server had an error/);

  fake.script({ kind: 'hang' });
  const slow = await failureOf(engineFor(fake, { timeoutSecs: 0.3 }).run(job(), recordingContext().ctx));
  assert.equal(slow.code, 'timeout');
  assert.equal(slow.retryable, true);

  fake.script({ kind: 'answer', status: 404, body: { error: { message: 'The model `dall-e-9` does not exist.', type: 'invalid_request_error', param: null, code: 'model_not_found' } } });
  const noModel = await failureOf(engine.run(job(), recordingContext().ctx));
  assert.equal(noModel.code, 'bad_input', 'a 404 about the model is the request’s fault');
  assert.match(noModel.message, /The model `dall-e-9` does not exist/);
  const wrongBase = await failureOf(engineFor(fake, { baseUrl: `${fake.origin}/api` }).run(job(), recordingContext().ctx));
  assert.equal(wrongBase.code, 'engine_unavailable', 'OpenAI’s "Invalid URL" 404: base_url is wrong');
  assert.match(wrongBase.message, /has no \/images\/generations \(404\)/);
  const gone = await FakeImagesServer.start();
  await gone.close();
  const refused = await failureOf(engineFor(gone).run(job(), recordingContext().ctx));
  assert.equal(refused.code, 'engine_error');
  assert.equal(refused.retryable, true);
  assert.match(refused.message, /cannot reach .*ECONNREFUSED/);
});

test('a server without the images route (plain 404) is engine_unavailable and names base_url', async (t) => {
  const files = await FileServer.start();
  t.after(() => files.close());
  const failure = await failureOf(createOpenAIEngine({ baseUrl: `${files.url}/v1` }, { log: silentLogger }).run(job(), recordingContext().ctx));
  assert.equal(failure.code, 'engine_unavailable');
  assert.equal(failure.retryable, false);
  assert.match(failure.message, /has no \/images\/generations \(404\): set \[engines\.openai\] base_url/);
});

test('cancel: aborting mid-request drops the connection and rejects as cancelled within 1 s', async (t) => {
  const fake = await FakeImagesServer.start({ apiKey: KEY });
  t.after(() => fake.close());
  fake.script({ kind: 'slow', ms: 10_000 });
  const { ctx, controller } = recordingContext();
  const running = engineFor(fake).run(job(), ctx);
  await fake.changes.waitFor(() => fake.requests('/v1/images/generations')[0], 'the request to arrive');

  const abortedAt = Date.now();
  controller.abort(new Error('cancelled by the studio'));
  const failure = await failureOf(running);
  assert.equal(failure.code, 'cancelled');
  assert.ok(Date.now() - abortedAt < 1000);
  await fake.changes.waitFor(() => (fake.disconnected === 1 ? true : undefined), 'the server to see the client go');
});

test('img2img inputs are refused: the images/generations API is text-to-image only', async (t) => {
  const fake = await FakeImagesServer.start();
  t.after(() => fake.close());
  const failure = await failureOf(engineFor(fake, { apiKeyEnv: undefined }).run(job({ prompt: 'p', initImageUrl: 'https://x/y.png' }), recordingContext().ctx));
  assert.equal(failure.code, 'bad_input');
  assert.match(failure.message, /cannot use initImageUrl/);
  assert.equal(fake.requests('/v1/images/generations').length, 0);
});

test('probe: reachable (200 or 404 on /models) is available; no base_url, an unset key variable, 401 and refused are not', async (t) => {
  const fake = await FakeImagesServer.start({ apiKey: KEY, models: ['sd-1.5', 'flux', 'dall-e-3'] });
  const bare = await FakeImagesServer.start({ modelsRoute: false });
  t.after(() => Promise.all([fake.close(), bare.close()]));

  assert.deepEqual(await engineFor(fake).probe(), { available: true, detail: `OpenAI-compatible server at ${fake.baseUrl}, 3 models (OpenAI images API)` });
  assert.equal(fake.requests('/v1/models')[0]?.headers.authorization, `Bearer ${KEY}`);
  assert.deepEqual(await engineFor(bare, { apiKeyEnv: undefined }).probe(), { available: true, detail: `OpenAI-compatible server at ${bare.baseUrl} (no /models list)` });

  const reason = async (engine: ReturnType<typeof engineFor>) => {
    const probe = await engine.probe();
    assert.ok(!probe.available);
    return probe.reason;
  };
  assert.match(await reason(createOpenAIEngine({}, { log: silentLogger })), /no base_url: set \[engines\.openai\] base_url/);
  assert.match(await reason(engineFor(fake, { apiKeyEnv: 'STUDIO_TEST_UNSET_KEY' })), /environment variable STUDIO_TEST_UNSET_KEY \(api_key_env\) is not set/);
  assert.match(await reason(engineFor(fake, { apiKeyEnv: undefined })), /refused the API key \(401\)/);
  assert.match(await reason(engineFor(fake, { apiKeyEnv: undefined, apiKey: 'sk-nope-12345678' })), /refused the API key \(401\): check \[engines\.openai\] api_key/);
  const unset = await failureOf(engineFor(fake, { apiKeyEnv: 'STUDIO_TEST_UNSET_KEY' }).run(job(), recordingContext().ctx));
  assert.equal(unset.code, 'engine_unavailable');
  const gone = await FakeImagesServer.start();
  await gone.close();
  assert.match(await reason(engineFor(gone)), /cannot reach the OpenAI-compatible server .*ECONNREFUSED/);
});

test('the API key never reaches the log or a failure message, even when a server echoes it', async (t) => {
  const fake = await FakeImagesServer.start({ apiKey: KEY });
  t.after(() => fake.close());
  const { log, lines } = capturedLogger();
  const engine = engineFor(fake, {}, log);
  const inConfig = createOpenAIEngine({ baseUrl: fake.baseUrl, apiKey: KEY }, { log });

  await engine.probe();
  await engine.run(job(), recordingContext(log).ctx);
  await inConfig.run(job(), recordingContext(log).ctx);
  fake.script({ kind: 'answer', status: 400, body: { error: { message: `Invalid request from key ${KEY}`, type: 'invalid_request_error', param: null, code: null } } });
  const echoed = await failureOf(engine.run(job(), recordingContext(log).ctx));
  fake.script({ kind: 'answer', status: 502, body: `<html>upstream rejected Bearer ${KEY}</html>` });
  const echoedText = await failureOf(engine.run(job(), recordingContext(log).ctx));

  for (const failure of [echoed, echoedText]) {
    assert.ok(!failure.message.includes(KEY), failure.message);
    assert.match(failure.message, /\[redacted\]/);
  }
  assert.ok(lines.some((line) => line.includes('"op":"openai_request"')), 'requests were logged');
  assert.ok(lines.some((line) => line.includes('prefer api_key_env')), 'a key in config.toml is discouraged');
  assert.ok(lines.every((line) => !line.includes(KEY)), 'no log line holds the key');
});
