// Issue 9: the model registry tells workers where to download weights from, so it refuses file
// URLs a worker should never be sent to: anything but https, and plain http to loopback only when
// the studio was started for development with --allow-loopback-http-models.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { startStudio, type RunningStudio } from '../../src/node/server.ts';

const ADMIN = 'admin-test-token';

async function start(dir: string, allowLoopbackHttpModels?: boolean): Promise<RunningStudio> {
  return startStudio({ dataDir: dir, port: 0, host: '127.0.0.1', adminToken: ADMIN, log: silentLogger, core: allowLoopbackHttpModels === undefined ? {} : { allowLoopbackHttpModels } });
}

function call(studio: RunningStudio, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${studio.url}/graphics/api${path}`, {
    method,
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
  });
}

function model(id: string, url: string) {
  return {
    id,
    kind: 'image',
    source: {
      engine: 'sd-cpp',
      files: [
        { role: 'vae', url: 'https://models.example/ae.safetensors', filename: 'ae.safetensors' },
        { role: 'diffusion-model', url, filename: 'weights.gguf' },
      ],
    },
  };
}

describe('model registry: file URLs', () => {
  let dir: string;
  let studio: RunningStudio;
  let dev: RunningStudio;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'studio-model-urls-'));
    studio = await start(join(dir, 'default'));
    dev = await start(join(dir, 'dev'), true);
  });
  after(async () => {
    await studio?.close();
    await dev?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses file:, gopher:, javascript:, data: and plain http with a 400 naming the field', async () => {
    const cases: Array<[string, RegExp]> = [
      ['file:///etc/passwd', /uses file:/],
      ['gopher://models.example/weights.gguf', /uses gopher:/],
      ['javascript:alert(1)', /uses javascript:/],
      ['data:application/octet-stream;base64,AAAA', /uses data:/],
      ['http://models.example/weights.gguf', /plain http/],
      ['http://127.0.0.1:8000/weights.gguf', /plain http.*--allow-loopback-http-models/],
      ['not a url', /is not a URL/],
    ];
    for (const [url, reason] of cases) {
      const res = await call(studio, 'POST', '/models', model(`m-${cases.findIndex(([u]) => u === url)}`, url));
      assert.equal(res.status, 400, url);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(body.error, 'invalid_model_url', url);
      assert.match(body.message, /^source\.files\[1\]\.url: /, url);
      assert.match(body.message, reason, url);
    }
    const list = (await (await fetch(`${studio.url}/graphics/api/models`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { models: Array<{ id: string }> };
    assert.ok(!list.models.some((m) => m.id.startsWith('m-')), 'nothing refused was stored');
  });

  it('PATCH is held to the same rule', async () => {
    assert.equal((await call(studio, 'POST', '/models', model('patched', 'https://models.example/weights.gguf'))).status, 201);
    const res = await call(studio, 'PATCH', '/models/patched', { source: model('patched', 'gopher://x/y').source });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_model_url');
  });

  it('https is accepted; loopback http only on a studio started with the dev flag, and never remote http', async () => {
    assert.equal((await call(studio, 'POST', '/models', model('secure', 'https://models.example/weights.gguf'))).status, 201);
    assert.equal((await call(dev, 'POST', '/models', model('mirror', 'http://127.0.0.1:8000/weights.gguf'))).status, 201);
    assert.equal((await call(dev, 'POST', '/models', model('mirror-6', 'http://[::1]:8000/weights.gguf'))).status, 201);
    const remote = await call(dev, 'POST', '/models', model('remote', 'http://10.0.0.5/weights.gguf'));
    assert.equal(remote.status, 400);
    assert.equal(((await remote.json()) as { error: string }).error, 'invalid_model_url');
  });

  it('a model stored under the dev flag is not sent to workers by a studio started without it', async () => {
    const dataDir = join(dir, 'restarted');
    const first = await start(dataDir, true);
    assert.equal((await call(first, 'POST', '/models', model('mirrored', 'http://127.0.0.1:8000/weights.gguf'))).status, 201);
    await first.close();
    const second = await start(dataDir);
    try {
      const job = await call(second, 'POST', '/jobs', { model: 'mirrored', task: { kind: 'image', prompt: 'p' } });
      assert.equal(job.status, 400);
      const body = (await job.json()) as { error: string; message: string };
      assert.equal(body.error, 'invalid_model_url');
      assert.match(body.message, /^model "mirrored" cannot run: source\.files\[1\]\.url: uses plain http.*; fix it with PATCH \/graphics\/api\/models\/mirrored$/);
    } finally {
      await second.close();
    }
  });
});
