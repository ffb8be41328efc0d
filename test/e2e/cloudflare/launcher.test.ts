// `npm run studio:cf` (scripts/studio-cf.ts): the Cloudflare host bundled for workerd and started
// under Miniflare 4, offline. It must print the same start line as `studio serve`, answer the same
// health check, and stop cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStudioProcess } from '../../helpers/processes.ts';

test('studio:cf starts the bundle under workerd, answers /graphics/api/health and exits 0 on SIGTERM', { timeout: 90_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'studio-cf-'));
  const studio = await startStudioProcess({ dataDir, host: 'cloudflare' });
  try {
    const res = await fetch(`${studio.url}/graphics/api/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ok: boolean; workersOnline: number };
    assert.equal(body.ok, true);
    assert.equal(body.workersOnline, 0);
  } finally {
    const exit = await studio.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, studio.proc.output.slice(-2000));
  }
});
