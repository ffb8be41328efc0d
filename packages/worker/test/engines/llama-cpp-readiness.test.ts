// llama-server lists its models while it still loads one (issue 13): a worker pointed at it with
// server_url must not look ready until /health says so. Runs the fake llama-server process, which
// answers as llama.cpp's server does while loading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { silentLogger } from '@studio-worker/log';
import { createLlamaCppEngine } from '../../src/engines/llama-cpp/index.ts';
import { freePort } from '../../src/platform/free-port.ts';
import { waitForEvent, writeLlamaServerLauncher } from './fakes/llama-server-harness.ts';

test('(6) server_url: while llama-server loads (GET /v1/models 200, chat 503) the probe says loading; after it loaded, available', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llama-ready-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const model = join(dir, 'm.gguf');
  await writeFile(model, 'gguf');
  const launcher = await writeLlamaServerLauncher(join(dir, 'bin'));
  const port = await freePort();
  const child = spawn(launcher, ['-m', model, '--host', '127.0.0.1', '--port', String(port), '--fake-state-dir', dir, '--fake-load-ms', '3000'], { stdio: 'ignore', detached: true });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    // Its own process group, killed whole: the fake starts a helper that ignores SIGTERM, as a real
    // llama-server's children may (killing only the leader left that helper running).
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
  });
  await waitForEvent(dir, (event) => event.event === 'start', 'the fake llama-server to listen');
  const base = `http://127.0.0.1:${port}/v1`;
  assert.equal((await fetch(`${base}/models`)).status, 200, 'the real server lists models while loading');
  assert.equal((await fetch(`${base}/chat/completions`, { method: 'POST', body: '{}' })).status, 503);

  const engine = createLlamaCppEngine({ serverUrl: base }, { log: silentLogger, modelsRoot: dir, env: {} });
  t.after(() => engine.close());
  const loading = await engine.probe();
  assert.equal(loading.available, false);
  assert.match(loading.available ? '' : loading.reason, /still loading its model \(GET \/health answered 503\)/);

  await waitForEvent(dir, (event) => event.event === 'loaded', 'the model to load');
  const ready = await engine.probe();
  assert.equal(ready.available, true, ready.available ? '' : ready.reason);
});
