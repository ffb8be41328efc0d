// Live previews end to end, in a browser (issue 13): a fake ComfyUI that sends binary preview frames
// as the real one does, a real `studio-worker run` with the comfyui engine, a real `studio serve`,
// and the dashboard in Chromium: the job detail shows the image forming, then the result.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@studio-worker/web-kit/browser';
import { defaultConfig } from 'studio-worker';
import { FakeComfyUI, TXT2IMG } from '../../packages/worker/test/engines/fakes/comfyui-server.ts';
import { startStudioProcess, startWorkerProcess, writeWorkerConfig, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

// A browser global for the functions passed to page.waitForFunction (module-local, for the type checker).
declare const document: any;

let dir: string;
let comfy: FakeComfyUI;
let studio: StudioProc;
let worker: Proc;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-preview-'));
  // 24 steps of 250 ms: several one-per-second previews before the result.
  comfy = await FakeComfyUI.start({ previews: true, stepMs: 250, steps: 24 });
  studio = await startStudioProcess({ dataDir: join(dir, 'studio') });
  const creds = await studio.api.createWorker('comfy box');
  const config = join(dir, 'worker', 'config.toml');
  await writeWorkerConfig(config, { apiBaseUrl: `${studio.url}/`, ...creds, engines: { ...defaultConfig().engines, synthetic: { enabled: false }, comfyui: { url: comfy.url } } });
  worker = startWorkerProcess(config, { name: 'comfy' });
  await waitFor('the comfyui worker online', async () => (await studio.api.workers()).some((w) => w.state === 'online' && w.capabilities?.supportedModelsPerKind.image?.includes('comfyui:*')));
  await studio.api.json('POST', '/models', { id: 'sdxl-comfy-preview', kind: 'image', vramGbEstimate: 0, source: { engine: 'comfyui', files: [], cliDefaults: { workflow: TXT2IMG } } });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await studio?.stop();
  await comfy?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('live preview in the dashboard (browser, real studio and worker, fake ComfyUI)', { timeout: 120_000 }, () => {
  it('the job detail shows ComfyUI’s preview changing while the job runs, then the result', async () => {
    await page.goto(`${studio.url}/#token=${studio.api.token}`);
    await page.locator('#feed-status[data-state="live"]').waitFor();
    const [job] = await studio.api.createJobs([{ model: 'sdxl-comfy-preview', task: { kind: 'image', prompt: 'a lighthouse at dusk', width: 64, height: 64, steps: 24, ext: 'png' } }]);
    assert.ok(job);
    const row = page.locator(`button.job-row[data-job-id="${job.id}"]`);
    await row.click();
    const preview = page.locator('#job-detail .live-preview img');
    await preview.waitFor();
    const first = (await preview.getAttribute('src')) ?? '';
    assert.match(first, /^data:image\/jpeg;base64,/);
    // The picture changes as the steps go by (the fake brightens each step's JPEG).
    await page.waitForFunction((src) => document.querySelector('#job-detail .live-preview img')?.getAttribute('src') !== src, first);
    assert.equal(await preview.evaluate((img: any) => img.complete && img.naturalWidth), 64, 'the preview decodes');
    await row.locator('.badge', { hasText: /^done$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#job-detail img.result-image').waitFor();
    assert.equal(await page.locator('#job-detail .live-preview').count(), 0, 'the preview gives way to the result');
    assert.deepEqual(pageErrors, []);
  });
});
