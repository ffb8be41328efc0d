// The dashboard lists jobs and workers across pools (issue 12 item 3): a Chromium page on the
// Cloudflare host under workerd with two pools shows the jobs of both and the workers of both,
// from the Worker's merged lists.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '@studio-worker/web-kit/browser';
import { startStudioProcess, type StudioProc } from '../../helpers/processes.ts';

// A browser global for the functions passed to page.waitForFunction (module-local, for the type checker).
declare const document: { body: { innerText: string } };
let dir: string;
let studio: StudioProc;
let browser: Browser;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-dashboard-pools-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare', env: { STUDIO_POOLS: 'default,gpu' } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await studio?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('the jobs and workers of both pools appear in one dashboard', { timeout: 90_000 }, async () => {
  const llm = (content: string, pool: string) => ({ model: 'synthetic-llm', pool, task: { kind: 'llm', messages: [{ role: 'user', content }] } });
  const [inDefault] = await studio.api.createJobs([llm('default pool job', 'default')]);
  const [inGpu] = await studio.api.createJobs([llm('gpu pool job', 'gpu')]);
  assert.ok(inDefault && inGpu);
  assert.match(inGpu.id, /^gpu\./);
  const gpuWorker = await studio.api.json<{ workerId: string }>('POST', '/workers?pool=gpu', { label: 'gpu-box' });
  const defaultWorker = await studio.api.createWorker('default-box');
  assert.match(gpuWorker.workerId, /^gpu\./);

  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.setDefaultTimeout(20_000);
  await page.goto(`${studio.url}/#token=${studio.api.token}`);
  for (const id of [inDefault.id, inGpu.id]) await page.locator(`button.job-row[data-job-id="${id}"]`).waitFor();
  // The workers section lists both pools' workers (their labels), from the merged GET /workers.
  await page.waitForFunction((labels) => labels.every((label) => document.body.innerText.includes(label)), ['gpu-box', 'default-box']);
  assert.match(defaultWorker.workerId, /^w-/);
  assert.deepEqual(errors, []);
  await page.close();
});
