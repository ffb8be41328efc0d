// The PM2 ecosystem's worker apps stay stopped on the exit codes that mean "restarting would only
// repeat this": another daemon holds the lock (3), or a newer process took over the worker id (5).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT_DISPLACED, EXIT_LOCKED } from 'studio-worker';
import { ROOT } from '../helpers/processes.ts';

test('ecosystem.config.cjs: both worker apps list EXIT_LOCKED and EXIT_DISPLACED in stop_exit_codes', async () => {
  const data = await mkdtemp(join(tmpdir(), 'ecosystem-'));
  const saved = { dir: process.env.STUDIO_DEV_DATA_DIR, token: process.env.STUDIO_ADMIN_TOKEN };
  process.env.STUDIO_DEV_DATA_DIR = data;
  process.env.STUDIO_ADMIN_TOKEN = 'test-token';
  try {
    const { apps } = createRequire(import.meta.url)(join(ROOT, 'ecosystem.config.cjs')) as { apps: Array<{ name: string; stop_exit_codes?: number[] }> };
    const workers = apps.filter((app) => app.name.startsWith('worker'));
    assert.equal(workers.length, 2);
    for (const app of workers) assert.deepEqual(app.stop_exit_codes, [EXIT_LOCKED, EXIT_DISPLACED], app.name);
  } finally {
    if (saved.dir === undefined) delete process.env.STUDIO_DEV_DATA_DIR;
    else process.env.STUDIO_DEV_DATA_DIR = saved.dir;
    if (saved.token === undefined) delete process.env.STUDIO_ADMIN_TOKEN;
    else process.env.STUDIO_ADMIN_TOKEN = saved.token;
    await rm(data, { recursive: true, force: true });
  }
});
