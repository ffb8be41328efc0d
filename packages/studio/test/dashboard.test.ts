import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@studio-worker/web-kit/browser';
import { silentLogger } from '@studio-worker/log';
import { CreateJobRequest, type JobView, type RegistrationPoll, type WorkerView } from '@studio-worker/protocol';
import { startStudio, type RunningStudio } from '../src/node/server.ts';
import {
  contrastProblems,
  focusRing,
  jobRowsListed,
  overflowsHorizontally,
  resultAudioLoaded,
  resultImageLoaded,
  resultImageWidth,
  unlabelledControls,
} from './dashboard/page-checks.ts';
import { audioWorkerCapabilities, imageWorkerCapabilities, ScriptedWorker } from './dashboard/scripted-worker.ts';

const ADMIN_TOKEN = 'test-admin';
const SHOTS = join(import.meta.dirname, '..', '..', '..', 'test-output', 'dashboard');

/**
 * The dashboard in a real browser against a real studio: sign-in, the live worker list, a job
 * from the submit form to its result image, registration approval, cancel, a bad token, the feed
 * reconnecting after a studio restart, and basic accessibility. The tests run in order on one page.
 */
describe('studio dashboard (browser)', { timeout: 120_000 }, () => {
  let dataDir: string;
  let studio: RunningStudio;
  let browser: Browser;
  let page: Page;
  let worker: ScriptedWorker;
  let audioWorker: ScriptedWorker | undefined;
  const pageErrors: string[] = [];

  const api = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${studio.url}/graphics/api${path}`, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
    });
    assert.ok(response.ok, `${init.method ?? 'GET'} ${path} answered ${response.status}: ${await response.clone().text()}`);
    return (await response.json()) as T;
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), 'studio-dashboard-'));
    studio = await startStudio({ dataDir, port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, log: silentLogger });
    const created = await api<{ workerId: string; authToken: string }>('/workers', { method: 'POST', body: JSON.stringify({ label: 'gpu-box-test' }) });
    worker = await ScriptedWorker.connect(studio.url, created.workerId, created.authToken, imageWorkerCapabilities('gpu-box'), { holdJobs: true });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    worker?.close();
    audioWorker?.close();
    await browser?.close();
    await studio?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('signs in from a #token= link and takes the token out of the address bar', async () => {
    await page.goto(`${studio.url}/#token=${ADMIN_TOKEN}`);
    await page.getByRole('heading', { name: 'Workers' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token must leave the address bar');
    assert.equal(await page.evaluate(() => localStorage.getItem('studio.adminToken')), ADMIN_TOKEN);
    await page.locator('#feed-status[data-state="live"]').waitFor();
  });

  test('shows the connected worker online with what it serves', async () => {
    const card = page.locator('#workers li.card', { hasText: 'gpu-box-test' });
    await card.locator('.badge', { hasText: /^online$/ }).waitFor();
    const text = await card.innerText();
    assert.match(text, /gpu-box/);
    assert.match(text, /Image/);
    assert.match(text, /synthetic-image/);
    assert.match(text, /sd-cpp: sd-cli not found on PATH/, 'unavailable engines are shown with their reason');
    assert.match(text, /idle/);
    assert.equal(await card.locator('time').first().getAttribute('datetime') !== null, true, 'the last heartbeat is shown as a time');
  });

  test('submits a prompt, shows its progress live, then the result image', async () => {
    // Longer than a row shows: the row is shortened, the job and the detail keep all of it.
    const prompt = `A lighthouse on a cliff at dusk, ${'with waves and gulls and rain, '.repeat(8)}END-OF-PROMPT`;
    // Preselected: a model the online worker runs now (not the first seeded one, which nobody serves).
    assert.equal(await page.getByLabel('Model').inputValue(), 'synthetic-image');
    await page.locator('#image-prompt').fill(prompt);
    await page.locator('#image-width').fill('64');
    await page.locator('#image-height').fill('48');
    await page.getByRole('button', { name: 'Submit job' }).click();

    const offer = await worker.nextOffer();
    assert.equal(offer.task.kind === 'image' && offer.task.prompt, prompt, 'the worker got the whole prompt');
    const row = page.locator(`button.job-row[data-job-id="${offer.jobId}"]`);
    await row.locator('.badge', { hasText: /^running$/ }).waitFor();
    await row.getByRole('progressbar', { name: 'generating: 50%' }).waitFor();
    const workerCard = page.locator('#workers li.card', { hasText: 'gpu-box-test' });
    await workerCard.getByRole('button', { name: offer.jobId }).waitFor();
    const detail = page.locator('#job-detail');
    await detail.getByRole('heading', { name: `Job ${offer.jobId}` }).waitFor();
    assert.equal(await detail.locator('.prompt-full').textContent(), prompt);
    const preview = (await row.locator('.prompt-preview').textContent()) ?? '';
    assert.ok(preview.length <= 120 && preview.endsWith('…'), `the row shortens the prompt for display: "${preview}"`);
    await shot('job-running');

    worker.release(offer.jobId);
    await row.locator('.badge', { hasText: /^done$/ }).waitFor();
    await workerCard.getByText('idle').waitFor();
    const image = detail.locator('img.result-image');
    await image.waitFor();
    await page.waitForFunction(resultImageLoaded);
    assert.equal(await page.evaluate(resultImageWidth), 64);
    assert.match((await image.getAttribute('src')) ?? '', /^blob:/, 'the image is fetched with the bearer header and shown from a blob');
    await detail.locator('.test-banner', { hasText: 'Test output' }).waitFor();
    assert.deepEqual(worker.errors, []);

    const job = await api<JobView>(`/jobs/${offer.jobId}`);
    assert.equal(job.status, 'done');
    assert.equal(job.prompt, prompt, 'the studio stored the whole prompt');
    await page.locator('#jobs .chip-button', { hasText: /^done\s+1$/ }).waitFor();
    await shot('job-done');
  });

  test('shows a JSON result pretty-printed and an audio result as a player', async () => {
    const created = await api<{ workerId: string; authToken: string }>('/workers', { method: 'POST', body: JSON.stringify({ label: 'audio-box-test' }) });
    audioWorker = await ScriptedWorker.connect(studio.url, created.workerId, created.authToken, audioWorkerCapabilities('audio-box'));
    await page.locator('#workers li.card', { hasText: 'audio-box-test' }).locator('.badge', { hasText: /^online$/ }).waitFor();
    const detail = page.locator('#job-detail');

    await page.getByLabel('Model').selectOption('synthetic-stt');
    await page.getByLabel('Audio URL').fill('https://example.com/speech.wav');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const json = detail.locator('pre.result-json');
    await json.waitFor();
    const text = (await json.textContent()) ?? '';
    assert.ok(text.includes('\n  "text": "transcript of https://example.com/speech.wav"'), `pretty-printed JSON: ${text}`);

    await page.getByLabel('Model').selectOption('synthetic-tts');
    await page.getByLabel('Text to speak').fill('Hello from the studio');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await detail.locator('audio[controls]').waitFor();
    await page.waitForFunction(resultAudioLoaded);
    assert.deepEqual(audioWorker.errors, []);
    await shot('audio-result');
  });

  test('a registration request appears live; approve, reject and delete work', async () => {
    const register = async (machineName: string, label: string) => {
      const secret = randomBytes(32).toString('hex');
      const response = await fetch(`${studio.url}/graphics/api/workers/register-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'studio-worker/0.1.0-test' },
        body: JSON.stringify({
          installId: `install-${randomBytes(6).toString('hex')}`,
          registrationSecretHash: createHash('sha256').update(secret).digest('hex'),
          capabilities: imageWorkerCapabilities(machineName),
          userAgent: 'studio-worker/0.1.0-test',
          label,
        }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      const { requestId } = (await response.json()) as { requestId: string };
      return { requestId, secret };
    };

    const first = await register('render-node-7', 'Render node 7');
    const request = page.locator('#pending li.card', { hasText: 'render-node-7' });
    await request.waitFor();
    const text = await request.innerText();
    for (const expected of ['ada', '24 GB', 'Image', '127.0.0.1']) assert.ok(text.includes(expected), `the request shows ${expected}: ${text}`);
    await shot('pending');
    await request.getByRole('button', { name: /^Approve/ }).click();
    await request.waitFor({ state: 'detached' });
    const approved = page.locator('#workers li.card', { hasText: 'Render node 7' });
    await approved.waitFor();
    // Approved, not yet connected: not "offline, last heartbeat never".
    await approved.locator('.badge', { hasText: /^approved, waiting for it to connect$/ }).waitFor();
    assert.doesNotMatch(await approved.innerText(), /Last heartbeat/);
    await shot('approved-waiting');
    const answer = (await (await fetch(`${studio.url}/graphics/api/workers/register-requests/${first.requestId}`, { headers: { authorization: `Bearer ${first.secret}` } })).json()) as RegistrationPoll;
    assert.equal(answer.status, 'approved');
    const renderNode = answer.status === 'approved' ? await ScriptedWorker.connect(studio.url, answer.workerId, answer.authToken, imageWorkerCapabilities('render-node-7')) : undefined;
    await approved.locator('.badge', { hasText: /^online$/ }).waitFor();
    renderNode?.close();
    await approved.locator('.badge', { hasText: /^offline$/ }).waitFor();

    const second = await register('render-node-8', 'Render node 8');
    const secondCard = page.locator('#pending li.card', { hasText: 'render-node-8' });
    await secondCard.getByRole('button', { name: /^Reject/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason (optional)').fill('not one of our machines');
    await dialog.getByRole('button', { name: 'Reject' }).click();
    await secondCard.waitFor({ state: 'detached' });
    const poll = await fetch(`${studio.url}/graphics/api/workers/register-requests/${second.requestId}`, { headers: { authorization: `Bearer ${second.secret}` } });
    assert.deepEqual((await poll.json()) as RegistrationPoll, { status: 'rejected', reason: 'not one of our machines' });

    await approved.getByRole('button', { name: /^Delete/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete worker' }).click();
    await approved.waitFor({ state: 'detached' });
    const { workers } = await api<{ workers: WorkerView[] }>('/workers');
    assert.deepEqual(workers.map((w) => w.label).sort(), ['audio-box-test', 'gpu-box-test']);
  });

  test('the model picker groups models no online worker runs apart; submitting one says where the job waits and why', async () => {
    const waitingGroup = page.locator('#submit-model optgroup[data-group="waiting"]');
    assert.match((await waitingGroup.getAttribute('label')) ?? '', /No online worker runs these/);
    assert.ok((await waitingGroup.locator('option').allTextContents()).some((text) => text.includes('z-image-turbo-q4_k_m.gguf') && text.includes('needs sd-cpp')));
    assert.ok(!(await waitingGroup.locator('option').allTextContents()).some((text) => text.includes('synthetic-image')), 'a model the worker serves is not in the waiting group');
    await page.getByLabel('Model').selectOption('z-image-turbo-q4_k_m.gguf');
    await page.locator('#submit-model-note', { hasText: 'No online worker runs the "sd-cpp" engine' }).waitFor();
    await page.locator('#image-prompt').fill('waits for a real engine');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const waiting = page.locator('#submit-waiting');
    await waiting.waitFor();
    assert.match((await waiting.textContent()) ?? '', /^Job \S+ is queued in the studio and waits there: no online worker runs the "sd-cpp" engine/);
    await shot('submit-waiting');
    const jobId = /^Job (\S+)/.exec((await waiting.textContent()) ?? '')?.[1];
    await api(`/jobs/${jobId}/cancel`, { method: 'POST' });
    await page.locator(`button.job-row[data-job-id="${jobId}"] .badge`, { hasText: /^cancelled$/ }).waitFor();
    await page.getByLabel('Model').selectOption('synthetic-image');
    const note = await page.locator('#submit-model-note').textContent();
    assert.ok(!note?.includes('No online worker'), 'a model the connected worker serves has no warning');
  });

  test('cancelling a queued job shows it cancelled; retry queues it again', async () => {
    // No worker serves llm, so this job stays queued.
    await page.getByLabel('Model').selectOption('synthetic-llm');
    await page.locator('#llm-message').fill('Write a haiku about queues');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const detail = page.locator('#job-detail');
    await detail.locator('.status-line .badge', { hasText: /^queued$/ }).waitFor();
    const jobId = ((await detail.locator('h2 code').textContent()) ?? '').trim();
    assert.match(jobId, /^job-/);
    assert.equal(await page.locator('button.job-row').first().getAttribute('data-job-id'), jobId, 'the newest job is listed first');

    await detail.getByRole('button', { name: 'Cancel job' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
    await detail.locator('.status-line .badge', { hasText: /^cancelled$/ }).waitFor();
    await page.locator(`button.job-row[data-job-id="${jobId}"] .badge`, { hasText: /^cancelled$/ }).waitFor();
    await page.locator('#announcer[aria-live="polite"]', { hasText: `Job ${jobId} cancelled.` }).waitFor({ state: 'attached' });
    assert.equal((await api<JobView>(`/jobs/${jobId}`)).status, 'cancelled');
    await shot('job-cancelled');

    await detail.getByRole('button', { name: 'Retry job' }).click();
    await detail.locator('.status-line .badge', { hasText: /^queued$/ }).waitFor();
    assert.equal((await api<JobView>(`/jobs/${jobId}`)).status, 'queued');
  });

  test('batch jobs are listed in creation order (they share a createdAt)', async () => {
    const { jobs } = await api<{ jobs: JobView[] }>('/jobs/batch', {
      method: 'POST',
      body: JSON.stringify({ jobs: Array.from({ length: 12 }, (_, i) => ({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: `batch #${i}` }] } })) }),
    });
    const newestFirst = jobs.map((job) => job.id).reverse();
    await page.locator(`button.job-row[data-job-id="${newestFirst[0]}"]`).waitFor();
    await page.waitForFunction(jobRowsListed, newestFirst);
    const listed = await page.locator('button.job-row').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-job-id')));
    assert.deepEqual(listed.slice(0, 12), newestFirst);
    for (const job of jobs) await api(`/jobs/${job.id}/cancel`, { method: 'POST' });
  });

  test('a bad token brings back the sign-in form with an error; the form signs in', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const other = await context.newPage();
      other.setDefaultTimeout(10_000);
      await other.goto(`${studio.url}/#token=not-the-token`);
      const error = other.locator('#login-error');
      await error.waitFor();
      assert.match((await error.textContent()) ?? '', /refused this admin token/);
      assert.equal(await other.evaluate(() => localStorage.getItem('studio.adminToken')), null, 'a refused token is forgotten');
      await other.screenshot({ path: join(SHOTS, 'login-error.png') });

      await other.getByLabel('Admin token').fill(ADMIN_TOKEN);
      await other.getByRole('button', { name: 'Sign in' }).click();
      await other.getByRole('heading', { name: 'Workers' }).waitFor();
      await other.locator('#feed-status[data-state="live"]').waitFor();
    } finally {
      await context.close();
    }
  });

  test('the feed reconnects after a studio restart and re-fetches what it missed', async () => {
    const port = studio.port;
    await studio.close();
    await page.locator('#feed-status[data-state="reconnecting"]').waitFor();
    studio = await startStudio({ dataDir, port, host: '127.0.0.1', adminToken: ADMIN_TOKEN, log: silentLogger });
    // No dashboard is connected to the new studio yet, so no event carries this job: only the
    // re-fetch after the reconnect can show it.
    const created = studio.core.jobs.create(CreateJobRequest.parse({ model: 'synthetic-image', task: { kind: 'image', prompt: 'made while the dashboard was away' } }));
    assert.ok(created.ok);
    await page.locator('#feed-status[data-state="live"]').waitFor({ timeout: 20_000 });
    await page.locator('button.job-row', { hasText: 'made while the dashboard was away' }).waitFor();
    // The scripted worker lost its connection with the old studio.
    await page.locator('#workers li.card', { hasText: 'gpu-box-test' }).locator('.badge', { hasText: /^offline$/ }).waitFor();
  });

  test('is labelled, keyboard-usable, AA contrast, and fits a phone', async () => {
    assert.deepEqual(await page.evaluate(unlabelledControls), []);
    assert.deepEqual(await page.evaluate(contrastProblems), []);

    // A reload starts keyboard navigation at the top, and the stored token signs in again.
    await page.reload();
    await page.locator('#feed-status[data-state="live"]').waitFor();
    await page.keyboard.press('Tab');
    assert.deepEqual(await page.evaluate(focusRing), { element: '<a> Skip to content', visible: true });
    await page.keyboard.press('Tab');
    assert.deepEqual(await page.evaluate(focusRing), { element: '<button> Sign out', visible: true });

    // Choose a job with the keyboard alone.
    const target = page.locator('button.job-row', { hasText: 'made while the dashboard was away' });
    const jobId = await target.getAttribute('data-job-id');
    await target.focus();
    await page.keyboard.press('Enter');
    await page.locator('#job-detail').getByRole('heading', { name: `Job ${jobId}` }).waitFor();
    assert.equal((await page.evaluate(focusRing)).visible, true);
    await shot('desktop');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#job-detail').getByRole('heading', { name: `Job ${jobId}` }).waitFor();
    assert.equal(await page.evaluate(overflowsHorizontally), false, 'no sideways scrolling at phone width');
    await shot('phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('the page threw no errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
