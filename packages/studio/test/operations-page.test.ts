import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { silentLogger } from '@studio-worker/log';
import { startStudio, type RunningStudio } from '../src/node/server.ts';
import { contrastProblems, unlabelledControls } from './dashboard/page-checks.ts';
import { audioWorkerCapabilities, imageWorkerCapabilities, ScriptedWorker } from './dashboard/scripted-worker.ts';

// Browser globals inside page.waitForFunction callbacks, for the type checker (see dashboard/page-checks.ts).
declare const document: any;

const CHROMIUM = '/usr/bin/chromium';
const ADMIN_TOKEN = 'ops-admin';

/**
 * The operator's second page in a real browser against a real studio: the results gallery (images
 * and audio players, filters, job detail), API tokens (created and shown once, revoked), storage and
 * the API reference read from the OpenAPI document.
 */
describe('operations page (browser)', { timeout: 120_000 }, () => {
  let dataDir: string;
  let studio: RunningStudio;
  let browser: Browser;
  let page: Page;
  const workers: ScriptedWorker[] = [];
  const pageErrors: string[] = [];

  const api = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${studio.url}/graphics/api${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`);
    return (await res.json()) as T;
  };

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing; install Debian's chromium with "apt-get install -y chromium"`);
    dataDir = await mkdtemp(join(tmpdir(), 'studio-ops-'));
    studio = await startStudio({ dataDir, port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, log: silentLogger });
    for (const [label, caps] of [['img', imageWorkerCapabilities('img-box')], ['snd', audioWorkerCapabilities('snd-box')]] as const) {
      const made = await api<{ workerId: string; authToken: string }>('/workers', { label });
      workers.push(await ScriptedWorker.connect(studio.url, made.workerId, made.authToken, caps));
    }
    const jobs = [
      ...['knight', 'dragon', 'castle'].map((a) => ({ model: 'synthetic-image', gameId: 'quest', assetName: a, task: { kind: 'image', prompt: a, width: 64, height: 64 } })),
      { model: 'synthetic-image', gameId: 'racer', assetName: 'car', task: { kind: 'image', prompt: 'car', width: 64, height: 64 } },
      { model: 'synthetic-tts', gameId: 'quest', assetName: 'voice-intro', task: { kind: 'audio_tts', text: 'welcome' } },
    ];
    const made = await api<{ jobs: Array<{ id: string }> }>('/jobs/batch', { jobs });
    for (let i = 0; i < 200; i++) {
      const { jobs: now } = await api<{ jobs: Array<{ status: string }> }>('/jobs/lookup', { ids: made.jobs.map((j) => j.id) });
      if (now.every((j) => j.status === 'done')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    for (const w of workers) w.close();
    await browser?.close();
    await studio?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('the gallery shows every result, images decoded and audio playable, and filters by game and asset', async () => {
    await page.goto(`${studio.url}/operations.html#token=${ADMIN_TOKEN}`);
    await page.waitForFunction(() => document.querySelectorAll('.gallery-grid img').length === 4 && [...document.querySelectorAll('.gallery-grid img')].every((i: any) => i.complete && i.naturalWidth === 64));
    await page.waitForFunction(() => {
      const audio = document.querySelector('.gallery-grid audio');
      return !!audio && audio.readyState >= 1 && audio.duration > 0;
    });
    assert.equal(await page.locator('.gallery-grid li').count(), 5);

    await page.fill('#g-game', 'quest');
    await page.fill('#g-asset', 'DRAG');
    await page.click('form.gallery-filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('.gallery-grid li').length === 1);
    assert.equal(await page.locator('.gallery-grid img').getAttribute('alt'), 'dragon (synthetic-image)');
    await page.click('.gallery-grid .caption');
    const detail = page.getByRole('region', { name: 'Job detail' });
    await detail.waitFor();
    assert.match(await detail.innerText(), /quest \/ dragon/);
    assert.match(await detail.innerText(), /image\/png/);
    await page.fill('#g-game', 'nothing-here');
    await page.click('form.gallery-filters button[type=submit]');
    await page.getByText('No finished results match these filters.').waitFor();
    assert.deepEqual(await page.evaluate(unlabelledControls), []);
  });

  test('API tokens: created and shown once, listed with their scope, revoked', async () => {
    await page.goto(`${studio.url}/operations.html#tokens`);
    await page.fill('#t-name', 'asset pipeline');
    await page.selectOption('#t-scope', 'submit');
    await page.click('text=Create token');
    const secret = await page.locator('.secret').innerText();
    assert.match(secret, /^sst_[0-9a-f]+$/);
    const res = await fetch(`${studio.url}/graphics/api/jobs`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(res.status, 403, 'the shown token works, with its submit scope');
    await page.click('text=Revoke asset pipeline');
    await page.getByText(/^revoked /).waitFor();
    assert.equal((await fetch(`${studio.url}/graphics/api/jobs/lookup`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: '{"ids":["x"]}' })).status, 401);
    assert.equal(await page.locator('.secret').count(), 0, 'the token is not shown again');
  });

  test('storage and the API reference render from the API', async () => {
    await page.goto(`${studio.url}/operations.html#storage`);
    await page.getByText('Result files').waitFor();
    assert.match(await page.locator('main').innerText(), /kept forever/);
    await page.goto(`${studio.url}/operations.html#api`);
    await page.getByText('POST /graphics/api/jobs/batch').waitFor();
    assert.ok((await page.locator('tbody tr').count()) > 30);
    assert.deepEqual(await page.evaluate(contrastProblems), []);
    assert.deepEqual(pageErrors, []);
  });
});
