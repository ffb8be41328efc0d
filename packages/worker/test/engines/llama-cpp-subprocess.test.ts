import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@studio-worker/log';
import { EngineFailure } from '../../src/engines/engine.ts';
import { createLlamaCppEngine, type LlamaCppEngineConfigInput } from '../../src/engines/llama-cpp/index.ts';
import { pollUntil } from '../helpers/wait.ts';
import { processGone, readEvents, waitGroupGone, waitProcessGone, scriptFakeLlamaServer, waitForEvent, writeLlamaServerLauncher, type FakeLlamaEvent } from './fakes/llama-server-harness.ts';
import { jobContext, llmJob, modelFile, rejection } from './fakes/llama-jobs.ts';

const LOAD_MS = 150;

interface Setup {
  dir: string;
  stateDir: string;
  launcher: string;
  modelA: string;
  modelB: string;
}

/** A temp dir with the launcher, two GGUF files and the fake's state dir; removed when the test ends. */
async function setup(t: { after(fn: () => Promise<void>): void }): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'llama-subprocess-test-'));
  const stateDir = join(dir, 'state');
  await mkdir(stateDir);
  const modelA = join(dir, 'model-a.gguf');
  const modelB = join(dir, 'model-b.gguf');
  await writeFile(modelA, 'GGUF fake weights A');
  await writeFile(modelB, 'GGUF fake weights B');
  const launcher = await writeLlamaServerLauncher(join(dir, 'bin'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, stateDir, launcher, modelA, modelB };
}

function engineFor(t: { after(fn: () => Promise<void>): void }, s: Setup, config: Partial<LlamaCppEngineConfigInput> = {}) {
  const engine = createLlamaCppEngine(
    { llamaServer: s.launcher, extraArgs: ['--fake-state-dir', s.stateDir, '--fake-load-ms', String(LOAD_MS)], ...config },
    { log: silentLogger, modelsRoot: s.dir, env: process.env },
  );
  t.after(() => engine.close());
  return engine;
}

const jobFor = (modelPath: string, options: Parameters<typeof llmJob>[0] = {}) => llmJob({ files: [modelFile(modelPath)], ...options });

const starts = async (stateDir: string) => (await readEvents(stateDir)).filter((event) => event.event === 'start');
const loads = async (stateDir: string) => (await readEvents(stateDir)).filter((event) => event.event === 'loaded');

function contentOf(result: unknown): string {
  return (result as { json: { choices: [{ message: { content: string } }] } }).json.choices[0].message.content;
}

test('subprocess: the model loads once for two jobs; loading is reported while /health answers 503', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  const first = jobContext(s.dir);
  const result = await engine.run(jobFor(s.modelA, { cliDefaults: { contextSize: 2048 } }), first);
  assert.deepEqual(result, {
    type: 'json',
    json: {
      object: 'chat.completion',
      model: 'qwen3-8b',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello, world!' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 },
    },
  });
  const loading = first.updates.filter((update) => update.phase === 'loading');
  assert.ok(loading.length >= 1, 'loading progress while the model loads');
  assert.equal(loading[0]?.message, 'llama-server is loading model-a.gguf');
  const firstGenerating = first.updates.findIndex((update) => update.phase === 'generating');
  assert.ok(first.updates.slice(firstGenerating).every((update) => update.phase === 'generating'), 'loading comes before generating');

  const second = jobContext(s.dir);
  assert.equal(contentOf(await engine.run(jobFor(s.modelA, { cliDefaults: { contextSize: 2048 } }), second)), 'Hello, world!');
  assert.equal(second.updates.filter((update) => update.phase === 'loading').length, 0, 'no loading the second time');

  const [start, ...moreStarts] = await starts(s.stateDir);
  assert.equal(moreStarts.length, 0, 'one llama-server for both jobs');
  assert.equal((await loads(s.stateDir)).length, 1, 'the model was loaded once');
  assert.deepEqual(start?.args?.slice(0, 9), ['-m', s.modelA, '--host', '127.0.0.1', '--port', String(start?.port), '-c', '2048', '--jinja']);
  assert.ok(!processGone(start?.pid ?? 0), 'the server stays resident between jobs');
  assert.match(((await engine.probe()) as { detail?: string }).detail ?? '', new RegExp(`^llama-server at .*llama-server, serving model-a\\.gguf on port ${start?.port}$`));
});

test('subprocess: a job for another model stops the old server and its whole process group', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  await engine.run(jobFor(s.modelA), jobContext(s.dir));
  const [old] = await starts(s.stateDir);
  assert.ok(old?.childPid !== undefined);
  assert.ok(!processGone(old.childPid), 'the fake’s helper process runs');

  await engine.run(jobFor(s.modelB), jobContext(s.dir));
  await waitProcessGone(old.pid, 'the old llama-server to be gone');
  await waitProcessGone(old.childPid, 'its helper (which ignores SIGTERM) to be gone too');
  await waitGroupGone(old.pid, 'nothing left in the old process group');
  const events = await readEvents(s.stateDir);
  assert.ok(events.some((event) => event.event === 'exit' && event.pid === old.pid && event.reason === 'SIGTERM'), 'the old server was asked to stop first');
  assert.deepEqual(
    (await loads(s.stateDir)).map((event) => event.model),
    [s.modelA, s.modelB],
  );
});

test('subprocess: a job for another model waits for the request still running on the old one, then switches', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  await engine.run(jobFor(s.modelA), jobContext(s.dir));
  const slowReply = Array.from({ length: 8 }, (_, i) => ` w${i}`);
  await scriptFakeLlamaServer(s.stateDir, { reply: slowReply, tokenDelayMs: 40, once: true });
  const slowCtx = jobContext(s.dir);
  const slow = engine.run(jobFor(s.modelA), slowCtx);
  await pollUntil(() => (slowCtx.updates.some((update) => (update.step ?? 0) >= 1) ? true : undefined), 'the slow job’s first token');
  const other = engine.run(jobFor(s.modelB), jobContext(s.dir));
  assert.equal(contentOf(await slow), slowReply.join(''), 'the running request finished on its server');
  assert.equal(contentOf(await other), 'Hello, world!');
  assert.deepEqual(
    (await loads(s.stateDir)).map((event) => event.model),
    [s.modelA, s.modelB],
  );
});

test('subprocess: a crash mid-stream fails the job (retryable, with the last error line); the next job restarts the server', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  await engine.run(jobFor(s.modelA), jobContext(s.dir));
  const [first] = await starts(s.stateDir);
  await scriptFakeLlamaServer(s.stateDir, { crashAfterTokens: 2, once: true });

  const error = await rejection(engine.run(jobFor(s.modelA), jobContext(s.dir)));
  assert.ok(error instanceof EngineFailure);
  assert.equal(error.code, 'engine_error');
  assert.equal(error.retryable, true);
  assert.match(error.message, /^llama-server exited with code 134 during the request: .*GGML_ASSERT\(buf != NULL && "tensor buffer not set"\) failed$/);
  await waitGroupGone(first?.pid ?? 0, 'the crashed server’s group to be gone');
  await waitProcessGone(first?.childPid ?? 0, 'its helper to go with it');

  assert.equal(contentOf(await engine.run(jobFor(s.modelA), jobContext(s.dir))), 'Hello, world!');
  assert.equal((await starts(s.stateDir)).length, 2, 'a new server was started');
  assert.equal((await loads(s.stateDir)).length, 2);
});

test('subprocess: a server that stops answering /health is replaced', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s, { probeTimeoutSecs: 0.3 });
  await engine.run(jobFor(s.modelA), jobContext(s.dir));
  const [first] = await starts(s.stateDir);
  process.kill(first?.pid ?? 0, 'SIGSTOP'); // alive, but answers nothing
  assert.equal(contentOf(await engine.run(jobFor(s.modelA), jobContext(s.dir))), 'Hello, world!');
  assert.equal((await starts(s.stateDir)).length, 2);
  await waitGroupGone(first?.pid ?? 0, 'the hung server’s group to be killed');
});

test('subprocess: a model file llama-server cannot load fails with llama.cpp’s own error line', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  const missing = join(s.dir, 'missing.gguf');
  const error = await rejection(engine.run(jobFor(missing), jobContext(s.dir)));
  assert.ok(error instanceof EngineFailure);
  assert.equal(error.code, 'engine_error');
  assert.equal(error.retryable, true);
  assert.equal(error.message, `llama-server exited with code 1 while loading missing.gguf: srv    load_model: failed to load model, '${missing}'`);
});

test('subprocess: an argument llama-server does not know fails the start with its message', async (t) => {
  const s = await setup(t);
  const engine = createLlamaCppEngine(
    { llamaServer: s.launcher, extraArgs: ['--fake-state-dir', s.stateDir, '--no-such-flag'] },
    { log: silentLogger, modelsRoot: s.dir, env: process.env },
  );
  t.after(() => engine.close());
  const error = await rejection(engine.run(jobFor(s.modelA), jobContext(s.dir)));
  assert.match(error.message, /^llama-server exited with code 1 while loading model-a\.gguf: error: invalid argument: --no-such-flag$/);
});

test('subprocess: cancelling mid-stream stops within 1 s, the server sees the disconnect and stays resident', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  await engine.run(jobFor(s.modelA), jobContext(s.dir));
  await scriptFakeLlamaServer(s.stateDir, { reply: Array.from({ length: 100 }, (_, i) => ` t${i}`), tokenDelayMs: 100, once: true });
  const ctx = jobContext(s.dir);
  const running = engine.run(jobFor(s.modelA), ctx);
  await pollUntil(() => (ctx.updates.some((update) => (update.step ?? 0) >= 1) ? true : undefined), 'the first streamed token');
  const started = Date.now();
  ctx.abort();
  const error = await rejection(running);
  const elapsed = Date.now() - started;
  assert.equal(error.code, 'cancelled');
  // Far below how long the job would run (or forever): the abort took effect. The 1 s
  // target is met with room to spare when the machine is quiet; a loaded CI box gets slack.
  assert.ok(elapsed < 3_000, `stopped after ${elapsed} ms`);
  await waitForEvent(s.stateDir, (event: FakeLlamaEvent) => event.event === 'disconnect', 'the fake to see the client disconnect');
  const [server] = await starts(s.stateDir);
  assert.ok(!processGone(server?.pid ?? 0), 'a cancelled job leaves the resident server running');
  assert.equal(contentOf(await engine.run(jobFor(s.modelA), jobContext(s.dir))), 'Hello, world!');
  assert.equal((await loads(s.stateDir)).length, 1);
});

test('subprocess: close() kills the whole process group', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  await engine.run(jobFor(s.modelA), jobContext(s.dir));
  const [server] = await starts(s.stateDir);
  assert.ok(!processGone(server?.childPid ?? 0));
  await engine.close();
  assert.ok(processGone(server?.pid ?? 0), 'close() returns once llama-server has exited');
  await waitProcessGone(server?.childPid ?? 0, 'the helper (which ignores SIGTERM) to be killed');
  await waitGroupGone(server?.pid ?? 0, 'the whole group to be gone');
  const after = await rejection(engine.run(jobFor(s.modelA), jobContext(s.dir)));
  assert.equal(after.code, 'engine_unavailable');
});

test('subprocess: a job without a "model" file is bad input', async (t) => {
  const s = await setup(t);
  const engine = engineFor(t, s);
  const error = await rejection(engine.run(llmJob({ model: 'no-gguf' }), jobContext(s.dir)));
  assert.equal(error.code, 'bad_input');
  assert.equal(error.retryable, false);
  assert.match(error.message, /"no-gguf" lists no file with role "model"/);
  assert.equal((await starts(s.stateDir)).length, 0, 'no server was started');
});

test('subprocess probe: llama_server missing, found on PATH, found in <models_root>/bin', async (t) => {
  const s = await setup(t);
  const missing = createLlamaCppEngine({ llamaServer: join(s.dir, 'nope', 'llama-server') }, { log: silentLogger, modelsRoot: s.dir, env: {} });
  const missingProbe = await missing.probe();
  assert.ok(!missingProbe.available);
  assert.equal(missingProbe.reason, `llama-server not found at ${join(s.dir, 'nope', 'llama-server')} (or not executable): fix llama_server in [engines.llama-cpp]`);

  const onPath = createLlamaCppEngine({}, { log: silentLogger, modelsRoot: join(s.dir, 'empty-root'), env: { PATH: `/nonexistent:${join(s.dir, 'bin')}` } });
  assert.deepEqual(await onPath.probe(), { available: true, detail: `llama-server at ${s.launcher}` });

  const inModelsRoot = createLlamaCppEngine({}, { log: silentLogger, modelsRoot: s.dir, env: { PATH: '' } });
  assert.deepEqual(await inModelsRoot.probe(), { available: true, detail: `llama-server at ${s.launcher}` });

  const byName = createLlamaCppEngine({ llamaServer: 'llama-server' }, { log: silentLogger, modelsRoot: '/nonexistent', env: { PATH: join(s.dir, 'bin') } });
  assert.deepEqual(await byName.probe(), { available: true, detail: `llama-server at ${s.launcher}` });
});

test('subprocess: a port taken by another program before llama-server binds it: another port, the job still runs', async (t) => {
  const s = await setup(t);
  await writeFile(join(s.stateDir, 'port-taken-once'), '');
  const engine = engineFor(t, s);
  const result = await engine.run(jobFor(s.modelA), jobContext(s.dir));
  assert.equal(contentOf(result), 'Hello, world!');
  const events = await readEvents(s.stateDir);
  const taken = events.find((event) => event.event === 'port-taken');
  const started = await starts(s.stateDir);
  assert.ok(taken, 'the first start met a taken port');
  assert.equal(started.length, 1, 'the second start listened');
  assert.notEqual(started[0]?.port, taken.port, 'on another port');
});
