// `npm run studio:cf` (scripts/studio-cf.ts): the Cloudflare host bundled for workerd and started
// under Miniflare 4, offline. It must print the same start line as `studio serve`, answer the same
// health check, and stop cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proc, STUDIO_CF_SCRIPT, startStudioProcess } from '../../helpers/processes.ts';

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

test('studio:cf refuses a flag it does not take with exit code 2 and says which it takes', { timeout: 30_000 }, async () => {
  const proc = new Proc('studio-cf', [STUDIO_CF_SCRIPT, '--idle-timeout-seconds', '1'], { STUDIO_PORT: '0', STUDIO_CF_DATA_DIR: mkdtempSync(join(tmpdir(), 'studio-cf-')) });
  const exit = await proc.exited;
  assert.equal(exit.code, 2);
  assert.match(proc.output, /Unknown option '--idle-timeout-seconds'/);
  assert.match(proc.output, /it takes --lease-seconds/);
  assert.doesNotMatch(proc.output, /listening/);
});
