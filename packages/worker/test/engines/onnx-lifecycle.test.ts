import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../helpers/wait.ts';
import { BROKEN_MESSAGE, CRASH_LINE } from './fixtures/onnx/shim-messages.ts';
import { matteModel, slowMatteModel, upscaleModel } from './fixtures/onnx/models.ts';
import { inputUrlPolicy } from '../../src/platform/url-policy.ts';
import {
  dataUrl,
  decodeResult,
  encodePng,
  expectFailure,
  inputServer,
  noiseImage,
  onnxEngine,
  onnxJob,
  processExists,
  recordingContext,
  scratchDir,
  writeModel,
} from './fixtures/onnx/harness.ts';

const BROKEN_RUNTIME = fileURLToPath(new URL('./fixtures/onnx/broken-runtime.ts', import.meta.url));
const CRASHING_RUNTIME = fileURLToPath(new URL('./fixtures/onnx/crashing-runtime.ts', import.meta.url));
/** About ten seconds of CPU at 512²: any run that finishes in this test was not cancelled. */
const SLOW_LAYERS = 48;

async function smallImageUrl(): Promise<string> {
  return dataUrl(await encodePng(noiseImage(16, 12)));
}

async function slowJob(dir: string) {
  const modelPath = await writeModel(dir, 'slow-matte.onnx', slowMatteModel(SLOW_LAYERS));
  return onnxJob({ modelPath, cliDefaults: { pipeline: 'matte' }, task: { initImageUrl: dataUrl(await encodePng(noiseImage(512, 512))) } });
}

function waitUntilGone(pid: number): Promise<true> {
  return pollUntil(() => (processExists(pid) ? undefined : true), `host process ${pid} to exit`, 2_000);
}

test('probe: available with the runtime version and providers; repeated probes reuse the result', async (t) => {
  const engine = onnxEngine(t);
  const first = await engine.probe();
  assert.ok(first.available, JSON.stringify(first));
  assert.match(first.detail ?? '', /^onnxruntime-node \d+\.\d+\.\d+; using cpu; build offers cpu/);
  const second = await engine.probe();
  assert.deepEqual(second, first);
  assert.equal(engine.hostStarts, 1);
  assert.deepEqual(engine.advertisedModels(), {});
  assert.equal(engine.name, 'onnx');
  assert.deepEqual([...engine.kinds], ['image']);
});

test('probe: a runtime that fails to load makes the engine unavailable with the reason; jobs fail engine_unavailable', async (t) => {
  const broken = onnxEngine(t, { runtimeModule: BROKEN_RUNTIME });
  const probe = await broken.probe();
  assert.equal(probe.available, false);
  assert.ok(!probe.available);
  assert.ok(probe.reason.includes(BROKEN_MESSAGE), probe.reason);
  assert.match(probe.reason, /failed to load/);
  assert.equal(broken.hostPid, undefined);

  const dir = await scratchDir(t);
  const modelPath = await writeModel(dir, 'nearest-x2.onnx', upscaleModel());
  const job = onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: await smallImageUrl() } });
  await expectFailure(broken.run(job, recordingContext().ctx), 'engine_unavailable', true, new RegExp(BROKEN_MESSAGE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

  const missing = await onnxEngine(t, { runtimeModule: 'onnxruntime-node-not-installed' }).probe();
  assert.ok(!missing.available);
  assert.match(missing.reason, /onnxruntime-node-not-installed failed to load: .*Cannot find package/);
});

test('probe: an execution provider the build lacks, or enabled = false, is unavailable with what to change', async (t) => {
  const noProvider = await onnxEngine(t, { executionProviders: ['imaginary-npu', 'cpu'] }).probe();
  assert.ok(!noProvider.available);
  assert.match(noProvider.reason, /execution provider "imaginary-npu" is not in onnxruntime-node .*execution_providers/);
  const disabled = await onnxEngine(t, { enabled: false }).probe();
  assert.ok(!disabled.available);
  assert.match(disabled.reason, /enabled = true/);
});

test('sessions are cached per model file: the second job does not reload; a replaced file does', async (t) => {
  const dir = await scratchDir(t);
  const modelPath = await writeModel(dir, 'nearest.onnx', upscaleModel(2));
  const engine = onnxEngine(t);
  const job = onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: await smallImageUrl() } });

  const first = recordingContext();
  await engine.run(job, first.ctx);
  const second = recordingContext();
  const result = await engine.run(job, second.ctx);
  assert.ok(result.type === 'file');
  assert.equal(engine.sessionLoads, 1);
  assert.equal(engine.hostStarts, 1);
  assert.ok(first.updates.some((u) => u.phase === 'loading'));
  assert.ok(!second.updates.some((u) => u.phase === 'loading'), 'the cached session was reported as loading');

  // A new file at the same path (another size) is a new model.
  await writeModel(dir, 'nearest.onnx', upscaleModel(3));
  const third = await engine.run(job, recordingContext().ctx);
  assert.ok(third.type === 'file');
  assert.equal((await decodeResult(third.bytes)).width, 48);
  assert.equal(engine.sessionLoads, 2);
});

test('max_cached_models = 1: alternating models reloads each time', async (t) => {
  const dir = await scratchDir(t);
  const a = await writeModel(dir, 'a.onnx', upscaleModel(2));
  const b = await writeModel(dir, 'b.onnx', matteModel());
  const engine = onnxEngine(t, { maxCachedModels: 1 });
  const initImageUrl = await smallImageUrl();
  for (const [modelPath, pipeline] of [[a, 'upscale'], [b, 'matte'], [a, 'upscale']] as const) {
    await engine.run(onnxJob({ modelPath, cliDefaults: { pipeline }, task: { initImageUrl } }), recordingContext().ctx);
  }
  assert.equal(engine.sessionLoads, 3);
});

test('cancel during inference: the job ends within 1 s, the host process is gone, the next job starts a new one', async (t) => {
  const dir = await scratchDir(t);
  const engine = onnxEngine(t);
  const controller = new AbortController();
  const { ctx, progressWhere } = recordingContext(controller.signal);
  const running = engine.run(await slowJob(dir), ctx);
  await progressWhere((u) => u.phase === 'generating' && u.step === 0);
  const pid = engine.hostPid;
  assert.ok(pid !== undefined && processExists(pid));

  const abortedAt = performance.now();
  controller.abort(new Error('cancelled by the test'));
  await expectFailure(running, 'cancelled', false, /cancelled by the test/);
  const elapsed = performance.now() - abortedAt;
  // Far below how long the job would run (or forever): the abort took effect. The 1 s
  // target is met with room to spare when the machine is quiet; a loaded CI box gets slack.
  assert.ok(elapsed < 3_000, `the job took ${Math.round(elapsed)} ms to end after the abort`);
  await waitUntilGone(pid);

  const modelPath = await writeModel(dir, 'nearest.onnx', upscaleModel(2));
  const next = await engine.run(onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: await smallImageUrl() } }), recordingContext().ctx);
  assert.ok(next.type === 'file');
  assert.equal(engine.hostStarts, 2);
});

test('a job waiting for the host runs once the job ahead of it is cancelled', async (t) => {
  const dir = await scratchDir(t);
  const engine = onnxEngine(t);
  const modelPath = await writeModel(dir, 'nearest.onnx', upscaleModel(2));
  const slowAbort = new AbortController();
  const slow = recordingContext(slowAbort.signal);
  const slowRun = engine.run(await slowJob(dir), slow.ctx);
  await slow.progressWhere((u) => u.phase === 'generating' && u.step === 0);

  const waiting = recordingContext();
  const waitingRun = engine.run(onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: await smallImageUrl() } }), waiting.ctx);
  slowAbort.abort(new Error('cancelled by the test'));
  await expectFailure(slowRun, 'cancelled', false, /cancelled/);
  const result = await waitingRun;
  assert.ok(result.type === 'file');
  assert.equal(engine.hostStarts, 2);
});

test('watchdog: an inference longer than inference_timeout_secs is killed as a retryable engine_error', async (t) => {
  const dir = await scratchDir(t);
  const engine = onnxEngine(t, { inferenceTimeoutSecs: 0.5 });
  const { ctx, progressWhere } = recordingContext();
  const running = engine.run(await slowJob(dir), ctx);
  await progressWhere((u) => u.phase === 'generating' && u.step === 0);
  const pid = engine.hostPid;
  assert.ok(pid !== undefined);
  await expectFailure(running, 'engine_error', true, /did not finish within 0\.5 s/);
  await waitUntilGone(pid);
});

test('a host that crashes mid-inference fails the job as a retryable engine_error carrying its last output line', async (t) => {
  const dir = await scratchDir(t);
  const modelPath = await writeModel(dir, 'nearest.onnx', upscaleModel(2));
  const engine = onnxEngine(t, { runtimeModule: CRASHING_RUNTIME });
  const job = onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: await smallImageUrl() } });
  const failure = await expectFailure(engine.run(job, recordingContext().ctx), 'engine_error', true, /crashed \(signal SIGABRT\)/);
  assert.ok(failure.message.endsWith(CRASH_LINE), failure.message);
  // The next job gets a fresh host (which crashes the same way here).
  await expectFailure(engine.run(job, recordingContext().ctx), 'engine_error', true, /crashed/);
  assert.equal(engine.hostStarts, 2);
});

test('idle_unload_secs stops an idle host; close() stops a running one and refuses further jobs', async (t) => {
  const dir = await scratchDir(t);
  const modelPath = await writeModel(dir, 'nearest.onnx', upscaleModel(2));
  const job = onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: await smallImageUrl() } });

  const idle = onnxEngine(t, { idleUnloadSecs: 0.2 });
  await idle.run(job, recordingContext().ctx);
  const idlePid = idle.hostPid;
  assert.ok(idlePid !== undefined);
  await waitUntilGone(idlePid);
  await idle.run(job, recordingContext().ctx);
  assert.equal(idle.hostStarts, 2);

  const closing = onnxEngine(t);
  await closing.run(job, recordingContext().ctx);
  const pid = closing.hostPid;
  assert.ok(pid !== undefined);
  await closing.close();
  assert.equal(processExists(pid), false);
  await expectFailure(closing.run(job, recordingContext().ctx), 'engine_unavailable', true, /shut down/);
});

test('inputs over loopback HTTP: 200 works, 404 is bad_input, 503 is retryable, redirects are checked, size is capped', async (t) => {
  const dir = await scratchDir(t);
  const modelPath = await writeModel(dir, 'nearest.onnx', upscaleModel(2));
  const png = await encodePng(noiseImage(10, 6));
  const base = await inputServer(t, {
    '/image.png': { status: 200, body: png, headers: { 'content-type': 'image/png' } },
    '/flaky.png': { status: 503 },
    '/moved.png': { status: 302, headers: { location: '/image.png' } },
    '/escape.png': { status: 302, headers: { location: 'http://10.20.30.40/image.png' } },
  });
  const engine = onnxEngine(t);
  // The loopback input server is trusted explicitly (allowed_input_origins); its redirects are not.
  const trusting = () => ({ ...recordingContext().ctx, inputUrls: inputUrlPolicy([base]) });
  const run = (url: string) => engine.run(onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: url } }), trusting());

  const ok = await run(`${base}/image.png?sig=secret`);
  assert.ok(ok.type === 'file');
  assert.equal((await decodeResult(ok.bytes)).width, 20);
  const moved = await run(`${base}/moved.png`);
  assert.ok(moved.type === 'file');
  const notFound = await expectFailure(run(`${base}/missing.png?sig=secret`), 'bad_input', false, /initImageUrl could not be fetched from http:\/\/127\.0\.0\.1:\d+\/missing\.png: it answered HTTP 404/);
  assert.ok(!notFound.message.includes('secret'), 'the query string (a signature) leaked into the message');
  await expectFailure(run(`${base}/flaky.png`), 'engine_error', true, /HTTP 503/);
  await expectFailure(run(`${base}/escape.png`), 'bad_input', false, /http:\/\/10\.20\.30\.40\/image\.png is refused: 10\.20\.30\.40 is a private address/);

  const capped = onnxEngine(t, { maxInputBytes: 100 });
  await expectFailure(
    capped.run(onnxJob({ modelPath, cliDefaults: { pipeline: 'upscale' }, task: { initImageUrl: `${base}/image.png` } }), trusting()),
    'bad_input',
    false,
    /more than the 100 bytes/,
  );
});
