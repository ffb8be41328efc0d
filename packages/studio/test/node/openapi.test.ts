// The OpenAPI document covers every route the studio serves: the routes are read from the real
// Hono app (not from a list kept by hand), so a route added without documentation fails here.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API_PREFIX } from '@studio-worker/protocol';
import { silentLogger } from '@studio-worker/log';
import { createApp } from '../../src/app/app.ts';
import { DEFAULT_HOST_LIMITS } from '../../src/app/limits.ts';
import { startStudio, type RunningStudio } from '../../src/node/server.ts';
import { DiskResultStore } from '../../src/node/results.ts';
import { diskFiles } from '../../src/node/host.ts';
import { RateLimiter } from '../../src/core/index.ts';

let dir: string;
let studio: RunningStudio;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'openapi-'));
  studio = await startStudio({ dataDir: dir, port: 0, host: '127.0.0.1', adminToken: 'openapi-test', log: silentLogger });
});

after(async () => {
  await studio.close();
  rmSync(dir, { recursive: true, force: true });
});

/** "/graphics/api/jobs/:id" → "/jobs/{id}" */
function openApiPath(honoPath: string): string {
  return honoPath.slice(API_PREFIX.length).replace(/:(\w+)/g, '{$1}');
}

describe('OpenAPI 3.1 at /graphics/api/openapi.json', () => {
  it('documents every API route the app serves, and nothing it does not', async () => {
    const app = createApp(
      {
        core: studio.core,
        // The routes are all this test reads: sockets are never accepted here.
        host: { clientAddress: () => 'test', results: new DiskResultStore(dir), files: diskFiles, commit() {}, sockets: { acceptWorker: () => new Response(null, { status: 500 }), acceptFeed: () => new Response(null, { status: 500 }) } },
        log: silentLogger,
        registerLimiter: new RateLimiter(1, 1000),
        limits: DEFAULT_HOST_LIMITS,
        now: Date.now,
      },
      { version: 'test' },
    );
    const served = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL' && r.path.startsWith(`${API_PREFIX}/`) && !r.path.endsWith('*'))
        .map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`),
    );
    assert.ok(served.size > 30, `found the app's routes (${served.size})`);
    const res = await fetch(`${studio.url}${API_PREFIX}/openapi.json`);
    assert.equal(res.status, 200, 'served without a token');
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { responses: object }>> };
    assert.equal(doc.openapi, '3.1.0');
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)));
    assert.deepEqual([...served].filter((r) => !documented.has(r)).sort(), [], 'routes missing from the OpenAPI document');
    assert.deepEqual([...documented].filter((r) => !served.has(r)).sort(), [], 'documented routes the app does not serve');
  });

  it('describes bodies and answers with the protocol schemas', async () => {
    const doc = (await (await fetch(`${studio.url}${API_PREFIX}/openapi.json`)).json()) as any;
    const create = doc.paths['/jobs'].post;
    const body = create.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required?.sort(), ['model', 'task']);
    assert.ok(create.responses['201'].content['application/json'].schema.properties.status.enum.includes('done'));
    assert.ok(create.parameters.some((p: { name: string; in: string }) => p.name === 'Idempotency-Key' && p.in === 'header'));
    assert.deepEqual(doc.paths['/jobs/{id}'].get.parameters[0], { name: 'id', in: 'path', required: true, schema: { type: 'string' } });
  });
});
