import { hostname } from 'node:os';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '@studio-worker/web-kit/browser';
import { parseConfigText } from '../../src/config/index.ts';
import { DaemonProcess, makeConfig, type TestConfig } from '../helpers/daemon-process.ts';
import { FakeStudio, offerFrame, type FakeConnection } from '../helpers/fake-studio.ts';
import { Api, discoveryOf, EPHEMERAL_PORT, type Discovery } from '../local-api/harness.ts';
import { FileServer, stallAfter, status as answerStatus } from '../models/file-server.ts';
import { activeElementId, contrastProblems, distanceFromBottom, focusRing, imageLoaded, imageSize, overflowsHorizontally, readClipboard, storedToken, unlabelledControls } from './page-checks.ts';

const SHOTS = join(import.meta.dirname, '..', '..', '..', '..', 'test-output', 'worker-ui');
const MiB = 1024 * 1024;
const PAGES = ['Jobs', 'Models', 'Worker', 'Logs', 'Config'] as const;

/**
 * The worker's web UI in headless Chromium against the real daemon (`studio-worker run`) and a fake
 * studio: registration and approval, a job from offer to thumbnail, cancel, pause/resume, logs,
 * models, config, a rejected registration and its reset, and the daemon going away and coming back.
 * The tests run in order on one page, like a user's session.
 */
describe('worker web UI (browser, real daemon)', { timeout: 240_000 }, () => {
  let studio: FakeStudio;
  let files: FileServer;
  let config: TestConfig;
  let daemon: DaemonProcess;
  let discovery: Discovery;
  let api: Api;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let connection: FakeConnection;
  let approve = false;
  const pageErrors: string[] = [];
  const cleanups: Array<() => Promise<unknown> | unknown> = [];

  const shot = (name: string, target: Page = page) => target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const header = {
    activity: () => page.locator('#activity-text'),
    studio: () => page.locator('#studio-state-text'),
  };
  const goTo = async (name: (typeof PAGES)[number], target: Page = page) => {
    await target.keyboard.press(`Control+${PAGES.indexOf(name) + 1}`);
    await target.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: false }).and(target.locator('[aria-current="page"]')).waitFor();
    await target.getByRole('heading', { level: 1, name }).waitFor();
  };
  const clipboard = () => page.evaluate(readClipboard);
  const TOKEN_KEY = 'studio-worker.localApiToken';

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    files = await FileServer.start(3 * MiB);
    studio = await FakeStudio.start();
    // Pending until the test approves; then the worker gets its id and token on the next poll.
    studio.onPoll = () => (approve ? { status: 200, body: { status: 'approved', workerId: 'w-ui', authToken: 'tok-SECRET-ui-0123456789' } } : { status: 200, body: { status: 'pending' } });
    // The model files come from a plain-http loopback server: allowed explicitly.
    config = await makeConfig(studio.url, { approved: false, extra: `${EPHEMERAL_PORT}\nallow_loopback_http = true` });
    // Its login entry would live under XDG_CONFIG_HOME/autostart: none there.
    daemon = new DaemonProcess(config.configPath, [], { env: { XDG_CONFIG_HOME: config.dir } });
    discovery = await discoveryOf(daemon);
    api = new Api(discovery);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: discovery.url });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await browser?.close();
    if (daemon && !daemon.exitInfo) await daemon.stop().catch(() => daemon.child.kill('SIGKILL'));
    await studio?.close();
    await files?.close();
    await config?.cleanup();
  });

  test('opens from the #token= link, keeps the token out of the address bar, and shows the worker awaiting approval', async () => {
    await page.goto(`${discovery.url}/#token=${encodeURIComponent(discovery.token)}`);
    await header.studio().filter({ hasText: /^Awaiting approval$/ }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token must leave the address bar');
    assert.deepEqual(await page.evaluate(storedToken, TOKEN_KEY), { session: discovery.token, localItems: 0 }, 'the token is kept for this tab only');
    await page.getByRole('link', { name: /^Jobs/ }).and(page.locator('[aria-current="page"]')).waitFor();
    await header.activity().filter({ hasText: /^Idle$/ }).waitFor();

    await goTo('Worker');
    const registration = page.locator('#registration');
    await registration.locator('.request-id', { hasText: 'rr-1' }).waitFor();
    await registration.getByText('Waiting for the studio operator to approve this worker.').waitFor();
    assert.ok(await registration.locator('time').count(), 'the request shows since when it waits');
    await shot('worker-awaiting-approval');
  });

  test('once the operator approves, the header says Connected and the Worker page shows the worker and its engines', async () => {
    approve = true;
    connection = await studio.ready(0);
    await header.studio().filter({ hasText: /^Connected$/ }).waitFor();
    const registration = page.locator('#registration');
    await registration.getByText('Approved as w-ui.').waitFor();
    await page.locator('#connection').getByText('Last heartbeat').waitFor();
    await page.locator('#connection time').waitFor();
    const synthetic = page.locator('tr[data-engine="synthetic"]');
    await synthetic.getByText('available', { exact: true }).waitFor();
    const sdCpp = page.locator('tr[data-engine="sd-cpp"]');
    await sdCpp.getByText('unavailable', { exact: true }).waitFor();
    assert.ok(((await sdCpp.locator('td.wrap').textContent()) ?? '').length > 0, 'an unavailable engine says why');
    // No GPU here: the page does not claim a clamp that did not happen.
    const machine = (await page.locator('#machine').innerText()) ?? '';
    assert.match(machine, /not detected/);
    // The machine's name and system come from the status's `machine` object.
    assert.ok(machine.includes(hostname()), `the Machine row names ${hostname()}`);
    assert.ok(machine.includes(`${process.platform} ${process.arch}`), 'the System row says the platform');
    assert.match(machine, /8 GB, as set: no GPU memory was detected, so nothing limits it/);
    const daemonPanel = page.locator('#daemon');
    assert.match((await daemonPanel.innerText()) ?? '', new RegExp(discovery.url.replace(/[.:/]/g, '\\$&')));
    await shot('worker-connected');
  });

  test('Check for updates shows the daemon’s answer (or why it could not check)', async () => {
    await page.getByRole('button', { name: 'Check for updates' }).click();
    const result = page.locator('#daemon .update-result');
    await result.locator('p').filter({ hasNotText: 'Checking' }).waitFor();
    const answer = await api.post('/daemon/update/check');
    const text = (await result.innerText()).trim();
    // This daemon runs from the checkout: it asks no feed and says so.
    assert.equal(answer.status, 200);
    assert.equal(text, `A git checkout: update it with git (git pull, then npm install) in ${answer.json.gitCheckout}.`);
  });

  test('a studio job shows in the header and under Now running with progress, then in the history with its thumbnail', async () => {
    await goTo('Jobs');
    const prompt = `A lighthouse on a cliff at dusk, ${'with waves and gulls, '.repeat(10)}END`;
    connection.send(offerFrame({ jobId: 'ui-job-1', kind: 'image', delayMs: 4000, prompt }));
    await header.activity().filter({ hasText: /^Running image · synthetic-model · \d+:\d\d$/ }).waitFor();
    await page.getByRole('progressbar', { name: /^Progress of the running job: \d+%$/ }).waitFor();
    const card = page.locator('.running-list button[data-job-id="ui-job-1"]');
    await card.getByRole('progressbar', { name: /^Progress of ui-job-1: \d+%$/ }).waitFor();
    assert.match((await card.locator('.prompt-preview').textContent()) ?? '', /…$/, 'the card shortens a long prompt');
    await shot('jobs-running');

    const row = page.locator('.history button[data-job-id="ui-job-1"]');
    await row.locator('.badge', { hasText: /^done$/ }).waitFor();
    await page.waitForFunction(imageLoaded, '.history button[data-job-id="ui-job-1"] img.thumb');
    assert.match((await row.locator('img.thumb').getAttribute('src')) ?? '', /^blob:/, 'the thumbnail is fetched with the token and shown from a blob');
    await header.activity().filter({ hasText: /^Idle$/ }).waitFor();
    await page.locator('.running-list button').first().waitFor({ state: 'detached' });
    assert.ok(studio.uploads.some((upload) => upload.jobId === 'ui-job-1'), 'the studio got the result');

    await row.click();
    const detail = page.locator('#job-detail');
    await detail.getByRole('heading', { name: 'Job ui-job-1' }).waitFor();
    assert.equal(await detail.locator('.prompt-full').textContent(), prompt, 'the detail shows the whole prompt');
    await page.waitForFunction(imageLoaded, '#job-detail img.result-image');
    const size = await page.evaluate(imageSize, '#job-detail img.result-image');
    assert.ok(size.width > 0 && size.width <= 384 && size.height <= 384, `a thumbnail at most 384 px: ${JSON.stringify(size)}`);
    const log = detail.locator('pre.job-log');
    await log.waitFor();
    const logText = (await log.textContent()) ?? '';
    assert.ok(logText.split('\n').length >= 1 && logText.includes('INFO'), `the job's log lines: ${logText}`);
    await detail.getByRole('button', { name: 'Copy log' }).click();
    await page.locator('#announcer', { hasText: /^Copied \d+ lines\.$/ }).waitFor({ state: 'attached' });
    assert.equal(await clipboard(), logText.replace(/^\(\d+ earlier lines dropped\)\n/, ''));
    await shot('jobs-done');
  });

  test('a job the studio cancels shows its reason; the history filters by outcome and source', async () => {
    connection.send(offerFrame({ jobId: 'ui-job-2', kind: 'llm', delayMs: 60_000, prompt: 'Write a long story' }));
    await page.locator('.running-list button[data-job-id="ui-job-2"]').waitFor();
    connection.send({ type: 'cancel', jobId: 'ui-job-2', attempt: 1 });
    const row = page.locator('.history button[data-job-id="ui-job-2"]');
    await row.locator('.badge', { hasText: /^cancelled$/ }).waitFor();
    assert.match((await row.locator('.row-error').textContent()) ?? '', /cancel/);
    await row.click();
    const detail = page.locator('#job-detail');
    await detail.getByRole('heading', { name: 'Job ui-job-2' }).waitFor();
    assert.match((await detail.locator('.failure-reason').textContent()) ?? '', /^Why it was cancelled: .*cancel/);

    const filters = page.locator('.filters');
    await filters.getByRole('button', { name: 'Cancelled', exact: true }).click();
    await page.locator('.history button[data-job-id="ui-job-1"]').waitFor({ state: 'detached' });
    assert.equal(await row.count(), 1);
    await filters.getByRole('button', { name: 'Local', exact: true }).click();
    await page.getByText('No finished job matches these filters.').waitFor();
    await filters.getByRole('button', { name: 'All', exact: true }).click();
    await filters.getByRole('button', { name: 'Any outcome' }).click();
    await page.locator('.history button[data-job-id="ui-job-1"]').waitFor();
    assert.equal(await filters.getByRole('button', { name: 'Any outcome' }).getAttribute('aria-pressed'), 'true');
  });

  test('Pause and Resume: the header and the daemon agree', async () => {
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await header.activity().filter({ hasText: /^Paused$/ }).waitFor();
    assert.equal((await api.get('/daemon/status')).json.paused, true);
    await page.locator('#announcer', { hasText: /^Paused/ }).waitFor({ state: 'attached' });
    await shot('header-paused');
    const resume = page.getByRole('button', { name: 'Resume', exact: true });
    await resume.focus();
    await page.keyboard.press('Enter');
    await header.activity().filter({ hasText: /^Idle$/ }).waitFor();
    assert.equal((await api.get('/daemon/status')).json.paused, false);
    await page.getByRole('button', { name: 'Pause', exact: true }).waitFor();
  });

  test('the Logs page shows the daemon’s lines, filters by level and by search, and copies what it shows', async () => {
    await goTo('Logs');
    const lines = page.locator('.log-lines li');
    await lines.filter({ hasText: 'paused by operator' }).first().waitFor();
    await lines.filter({ hasText: 'resumed by operator' }).first().waitFor();
    const total = await lines.count();
    assert.ok(total > 5, `several lines: ${total}`);

    await page.getByLabel('Level').selectOption('warn');
    await lines.filter({ hasText: 'job failed (cancelled)' }).first().waitFor();
    await lines.filter({ hasText: 'paused by operator' }).first().waitFor({ state: 'detached' });
    const levels = await page.locator('.log-lines li .level').allTextContents();
    assert.ok(levels.length > 0 && levels.every((level) => level === 'WARN' || level === 'ERROR' || level === 'FATAL'), `only warnings and errors: ${levels.join(',')}`);
    await shot('logs-warnings');

    await page.getByLabel('Level').selectOption('info');
    await page.getByLabel('Search').fill('PAUSED BY operator');
    await lines.filter({ hasText: 'resumed by operator' }).first().waitFor({ state: 'detached' });
    const shown = await page.locator('.log-lines li .msg').allTextContents();
    assert.ok(shown.length >= 1 && shown.every((msg) => /paused by operator/i.test(msg)), `only matching lines: ${shown.join(' | ')}`);
    await page.locator('.log-count', { hasText: `Showing ${shown.length} of` }).waitFor();
    await page.getByRole('button', { name: 'Copy visible lines' }).click();
    await page.locator('#announcer', { hasText: `Copied ${shown.length} lines.` }).waitFor({ state: 'attached' });
    const copied = (await clipboard()).split('\n');
    assert.equal(copied.length, shown.length);
    assert.ok(copied.every((line) => line.includes('paused by operator')));

    await page.getByLabel('Search').fill('');
    assert.equal(await page.getByLabel('Follow').isChecked(), true, 'Follow is on by default');
    const followed = await page.evaluate(distanceFromBottom, '.log-lines');
    assert.ok(followed <= 2, `Follow keeps the newest line in view (${followed} px from the bottom)`);
    await shot('logs');
  });

  test('the Models page lists catalogue models, shows a download’s progress, a failure with Retry, and deletes after confirming', async () => {
    const tiny = { id: 'tiny-model', kind: 'llm', displayName: 'Tiny model', vramGbEstimate: 1.5, source: { engine: 'synthetic', files: [{ role: 'model', url: files.url('/files/tiny.bin'), filename: 'tiny.bin', approxBytes: files.content.length, sha256: files.sha256 }] } };
    const broken = { id: 'broken-model', kind: 'image', source: { engine: 'synthetic', files: [{ role: 'model', url: files.url('/files/missing.bin'), filename: 'missing.bin' }] } };
    assert.equal((await api.post('/models', tiny)).status, 201);
    assert.equal((await api.post('/models', broken)).status, 201);
    await goTo('Models');

    // The studio's offer put its model in the catalogue; it has no files, so it is ready.
    const offered = page.locator('li[data-model-id="synthetic-model"]');
    await offered.locator('.badge', { hasText: /^ready$/ }).waitFor();
    await offered.getByText('from the studio').waitFor();

    const card = page.locator('li[data-model-id="tiny-model"]');
    await card.locator('.badge', { hasText: /^not downloaded$/ }).waitFor();
    files.script(stallAfter(MiB));
    await card.getByRole('button', { name: 'Download tiny-model' }).click();
    await card.locator('.badge', { hasText: /^downloading$/ }).waitFor();
    await card.getByRole('progressbar', { name: /^Download of tiny-model: [1-9]\d*%$/ }).waitFor();
    await shot('models-downloading');
    files.dropConnections();
    await card.locator('.badge', { hasText: /^ready$/ }).waitFor({ timeout: 30_000 });
    await card.locator('dd', { hasText: /^3\.0 MiB$/ }).waitFor();
    assert.equal(await card.getByRole('button', { name: /^Download/ }).count(), 0, 'a ready model has no Download button');

    const brokenCard = page.locator('li[data-model-id="broken-model"]');
    files.script(answerStatus(404));
    await brokenCard.getByRole('button', { name: 'Download broken-model' }).click();
    await brokenCard.locator('.badge', { hasText: /^download failed$/ }).waitFor();
    assert.match((await brokenCard.locator('.error').textContent()) ?? '', /404/);
    await brokenCard.getByRole('button', { name: 'Retry download of broken-model' }).waitFor();
    await shot('models');

    await brokenCard.getByRole('button', { name: 'Delete broken-model' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete broken-model?' });
    await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await brokenCard.count(), 1, 'Cancel keeps the model');
    await brokenCard.getByRole('button', { name: 'Delete broken-model' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete model' }).click();
    await brokenCard.waitFor({ state: 'detached' });
    const models = (await api.get('/models')).json.models.map((model: { id: string }) => model.id);
    assert.ok(!models.includes('broken-model') && models.includes('tiny-model'), `deleted on the daemon: ${models.join(', ')}`);
  });

  test('Config: the daemon’s refusal is shown next to the field; a valid save reaches config.toml', async () => {
    await goTo('Config');
    const vram = page.getByLabel('GPU memory offered to the studio (GB)');
    await vram.waitFor();
    assert.equal(await vram.inputValue(), '8');
    assert.ok(!(await page.locator('#page-config').innerText()).includes('SECRET'), 'no secret on the page');
    // What really happens, not config.toml's wish (both default to true there): a git checkout never
    // auto-updates, and nothing starts this worker at login.
    const autoUpdate = page.getByLabel('Install new versions automatically');
    assert.deepEqual([await autoUpdate.isChecked(), await autoUpdate.isDisabled()], [false, true]);
    assert.match((await page.locator('#cfg-autoUpdateEnabled-hint').textContent()) ?? '', /git checkout, which is updated with git/);
    const autoStart = page.getByLabel('Start the worker when I log in');
    assert.deepEqual([await autoStart.isChecked(), await autoStart.isDisabled()], [false, true]);
    assert.equal(await page.locator('#cfg-autoStart-hint').textContent(), `No login entry starts it. To add one: npm run worker -- setup --config ${config.configPath}`);

    await vram.fill('-1');
    const vramError = page.locator('#cfg-vramThresholdGb-error');
    await vramError.filter({ hasText: 'must be a number ≥ 0' }).waitFor();
    const refused = page.waitForResponse((response) => response.url().endsWith('/daemon/config') && response.request().method() === 'PUT');
    await page.getByRole('button', { name: 'Save' }).click();
    const answer = await refused;
    assert.equal(answer.status(), 400);
    const body = (await answer.json()) as { error: string; message: string };
    assert.equal(body.error, 'invalid_config');
    await vramError.filter({ hasText: body.message }).waitFor();
    assert.equal((await vramError.textContent())?.trim(), body.message, "the daemon's own message, next to the field it names");
    assert.equal(await vram.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(activeElementId), 'cfg-vramThresholdGb', 'focus goes to the refused field');
    assert.equal(parseConfigText(await readFile(config.configPath, 'utf8')).vramThresholdGb, 8, 'nothing saved');
    await shot('config-refused');

    await vram.fill('6.5');
    await page.getByLabel('Label').fill('UI test box');
    await page.getByLabel('Notify me when a job fails').check();
    await page.getByLabel('Models folder').fill(join(config.dir, 'models-2'));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.form-result .saved').waitFor();
    await page.locator('.form-result .restart-required', { hasText: 'Models folder' }).waitFor();
    const onDisk = parseConfigText(await readFile(config.configPath, 'utf8'));
    assert.equal(onDisk.vramThresholdGb, 6.5);
    assert.equal(onDisk.label, 'UI test box');
    assert.equal(onDisk.notifyOnFailure, true);
    assert.equal(onDisk.modelsRoot, join(config.dir, 'models-2'));
    assert.equal(onDisk.workerId, 'w-ui', 'credentials and registration untouched');
    assert.equal((await api.get('/daemon/status')).json.vramThresholdGb, 6.5, 'the threshold applies at once');
    assert.equal(await vramError.isHidden(), true, 'the refusal is gone');
    await shot('config-saved');
  });

  test('labelled, AA contrast in light and dark, visible focus, keyboard navigation, and no sideways scrolling on a phone', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const name of PAGES) {
        await goTo(name);
        assert.deepEqual(await page.evaluate(unlabelledControls), [], `${name} page (${scheme}): unlabelled controls`);
        assert.deepEqual(await page.evaluate(contrastProblems), [], `${name} page (${scheme}): contrast`);
        if (scheme === 'dark') await shot(`dark-${name.toLowerCase()}`);
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });

    await goTo('Jobs');
    await page.reload();
    await header.studio().filter({ hasText: /^Connected$/ }).waitFor();
    await page.keyboard.press('Tab');
    assert.deepEqual(await page.evaluate(focusRing), { element: '<a> Skip to content', visible: true });
    await page.keyboard.press('Tab');
    assert.deepEqual(await page.evaluate(focusRing), { element: '<button> Pause', visible: true });
    await page.keyboard.press('Tab');
    assert.equal((await page.evaluate(focusRing)).element, '<a> JobsCtrl+1');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
    assert.equal(await page.evaluate(activeElementId), 'models-title', 'focus moves to the new page');

    await page.setViewportSize({ width: 390, height: 844 });
    for (const name of PAGES) {
      await goTo(name);
      assert.equal(await page.evaluate(overflowsHorizontally), false, `${name} page: no sideways scrolling at phone width`);
      await shot(`phone-${name.toLowerCase()}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await goTo('Jobs');
    await shot('jobs');
  });

  test('a rejected registration shows the reason; Reset sends a new request and the worker waits for approval again', async () => {
    const otherStudio = await FakeStudio.start();
    cleanups.push(() => otherStudio.close());
    otherStudio.onPoll = (_record, index) => (index === 0 ? { status: 200, body: { status: 'rejected', reason: 'not one of our machines' } } : { status: 200, body: { status: 'pending' } });
    const otherConfig = await makeConfig(otherStudio.url, { approved: false, extra: EPHEMERAL_PORT });
    cleanups.push(() => otherConfig.cleanup());
    const other = new DaemonProcess(otherConfig.configPath);
    cleanups.push(() => (other.exitInfo ? undefined : other.stop()));
    const otherDiscovery = await discoveryOf(other);
    const otherPage = await context.newPage();
    otherPage.setDefaultTimeout(15_000);
    otherPage.on('pageerror', (error) => pageErrors.push(error.message));

    await otherPage.goto(`${otherDiscovery.url}/#token=${encodeURIComponent(otherDiscovery.token)}`);
    await otherPage.locator('#studio-state-text', { hasText: /^Registration rejected$/ }).waitFor();
    await goTo('Worker', otherPage);
    const registration = otherPage.locator('#registration');
    await registration.locator('.rejection-reason', { hasText: 'not one of our machines' }).waitFor();
    await shot('worker-rejected', otherPage);

    await registration.getByRole('button', { name: 'Reset registration' }).click();
    await otherPage.getByRole('dialog').getByRole('button', { name: 'Reset and ask again' }).click();
    await otherStudio.waitFor(() => otherStudio.registerRequests[1], 'a second registration request');
    await registration.locator('.request-id', { hasText: 'rr-2' }).waitFor();
    await otherPage.locator('#studio-state-text', { hasText: /^Awaiting approval$/ }).waitFor();
    await otherPage.close();
    assert.equal((await other.stop()).code, 0);
  });

  test('a page without a token, or with a wrong one, explains how to open the UI', async () => {
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    cleanups.push(() => fresh.close());
    const other = await fresh.newPage();
    other.setDefaultTimeout(15_000);
    other.on('pageerror', (error) => pageErrors.push(error.message));
    await other.goto(`${discovery.url}/`);
    await other.getByRole('heading', { name: 'Open the worker’s web UI' }).waitFor();
    // This daemon's own config and the command that opens its UI as typed here (a checkout), not ~/.config.
    assert.equal(await other.locator('#token-ui-command').textContent(), `npm run worker -- ui --config ${config.configPath}`);
    assert.equal(await other.locator('#token-config-dir').textContent(), config.dir);
    assert.doesNotMatch(await other.locator('.token-page').innerText(), /~\/\.config/);
    await other.getByLabel('Local API token').fill('not-the-token');
    await other.getByRole('button', { name: 'Open' }).click();
    const error = other.locator('#token-error');
    await error.waitFor();
    assert.match((await error.textContent()) ?? '', /local-api\.json/, "the daemon's 401 message names the file with the token");
    assert.equal((await other.evaluate(storedToken, TOKEN_KEY)).session, null, 'a refused token is forgotten');
    await shot('token-refused', other);
    await other.getByLabel('Local API token').fill(discovery.token);
    await other.getByRole('button', { name: 'Open' }).click();
    await other.locator('#studio-state-text', { hasText: /^Connected$/ }).waitFor();
  });

  test('a stopped daemon shows the unreachable banner; the page recovers when the daemon is back', async () => {
    const port = new URL(discovery.url).port;
    await goTo('Worker');
    await page.getByRole('button', { name: 'Stop the daemon' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Stop the daemon' }).click();
    assert.equal((await daemon.exited()).code, 0);
    const banner = page.locator('#unreachable');
    await banner.getByText('Daemon unreachable.').waitFor();
    await header.activity().filter({ hasText: /^Daemon unreachable$/ }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Pause', exact: true }).isDisabled(), true);
    await shot('daemon-unreachable');

    // The same port again, so this page's address reaches the new daemon.
    const text = await readFile(config.configPath, 'utf8');
    assert.match(text, /^local_api_port = 0$/m);
    await writeFile(config.configPath, text.replace(/^local_api_port = 0$/m, `local_api_port = ${port}`));
    daemon = new DaemonProcess(config.configPath);
    const again = await discoveryOf(daemon);
    assert.equal(again.url, discovery.url, 'the daemon is back on the same address');
    await banner.waitFor({ state: 'hidden' });
    await header.studio().filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20_000 });
    await page.locator('#daemon').getByText(`pid ${daemon.pid}`).waitFor();
  });

  test('the pages threw no errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
