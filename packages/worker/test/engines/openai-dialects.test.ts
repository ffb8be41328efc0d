// LocalAI and sd-server read the values OpenAI's images API has no field for in their own ways
// (issue 13): each test runs against a fake that behaves as the real server does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '@studio-worker/log';
import { createOpenAIEngine } from '../../src/engines/openai/index.ts';
import { freePort } from '../../src/platform/free-port.ts';
import { FakeImagesServer } from './fakes/openai-images-server.ts';
import { failureOf, imageJob, recordingContext } from './fakes/a1111-harness.ts';
import { FAKE_SD_SERVER, modelFiles, scratch } from './fakes/sd-test-kit.ts';
import { pollUntil } from '../helpers/wait.ts';

test('(4) LocalAI: the negative prompt travels as "prompt|negative" (LocalAI ignores negative_prompt), with seed and step; the probe names it', async (t) => {
  const fake = await FakeImagesServer.start({ localai: { version: 'v3.7.0' } });
  t.after(() => fake.close());
  const engine = createOpenAIEngine({ baseUrl: fake.baseUrl }, { log: silentLogger, env: {} });
  const probe = await engine.probe();
  assert.match(probe.available ? probe.detail ?? '' : '', /\(LocalAI\)$/);

  await engine.run(imageJob({ prompt: 'a paper boat', negativePrompt: 'fog', seed: 11, steps: 6, width: 32, height: 32 }, { engine: 'openai' }, 'sd'), recordingContext().ctx);
  assert.deepEqual(fake.applied, [{ positive: 'a paper boat', negative: 'fog', step: 6, seed: 11 }]);

  const pipe = await failureOf(engine.run(imageJob({ prompt: 'left | right', width: 32, height: 32 }, { engine: 'openai' }, 'sd'), recordingContext().ctx));
  assert.equal(pipe.code, 'bad_input');
  assert.match(pipe.message, /LocalAI reads everything after a "\|"/);
});

test('(5) sd-server’s OpenAI route: seed, steps and the negative prompt go in <sd_cpp_extra_args>, so a seed reproduces', async (t) => {
  const root = await scratch('sd-openai-');
  t.after(root.cleanup);
  const [model] = await modelFiles(root.dir, 'z', [['diffusion-model', 'z.gguf']]);
  const port = await freePort();
  const child = spawn(process.execPath, [FAKE_SD_SERVER, '--diffusion-model', model?.path ?? '', '--listen-ip', '127.0.0.1', '--listen-port', String(port)], {
    env: { ...process.env, FAKE_SD_STATE_DIR: root.dir },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const base = `http://127.0.0.1:${port}/v1`;
  await pollUntil(async () => ((await fetch(`${base}/models`).catch(() => undefined))?.ok ? true : undefined), 'the fake sd-server to listen');

  const engine = createOpenAIEngine({ baseUrl: base }, { log: silentLogger, env: {} });
  const probe = await engine.probe();
  assert.match(probe.available ? probe.detail ?? '' : '', /\(stable-diffusion\.cpp sd-server\)$/);
  await engine.run(imageJob({ prompt: 'a paper boat', negativePrompt: 'fog', seed: 42, steps: 3, width: 32, height: 32 }, { engine: 'openai' }, 'sd'), recordingContext().ctx);
  const log = join(root.dir, 'applied.log');
  assert.ok(existsSync(log), 'sd-server generated');
  const applied = JSON.parse(readFileSync(log, 'utf8').trim().split('\n')[0] ?? '{}').applied;
  assert.deepEqual([applied.prompt, applied.negative_prompt, applied.seed, applied.steps], ['a paper boat', 'fog', 42, 3]);
});
