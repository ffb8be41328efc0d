// The newcomer's first hour, in a real browser against `npm start`'s program as a real process on a
// fresh data dir: sign in with the token file, submit the preselected model and see the image,
// download it twice with a raw HTTP client, cancel a long job and see the engine stop, then register
// a second worker exactly as the README says and approve it. Screenshots of every step go to
// test-output/newcomer/.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '@studio-worker/web-kit/browser';
import sharp from 'sharp';
import { modelSelected, resultImageLoaded } from '../../packages/studio/test/dashboard/page-checks.ts';
import { StudioApi } from '../helpers/api.ts';
import { Proc, ROOT } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const SHOTS = join(ROOT, 'test-output', 'newcomer');

/** The environment a newcomer's shell has: none of npm's or a test runner's worker settings. */
function newcomerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key.startsWith('STUDIO_') || key === 'NODE_TEST_CONTEXT') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** One GET as the most basic client sends it (HTTP/1.1, Connection: close, read to the end). */
function rawGet(url: string, token: string): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(target.port), target.hostname);
    const chunks: Buffer[] = [];
    socket.on('connect', () =>
      socket.write(`GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${token}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n`),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no HTTP head in ${all.length} bytes`));
      const [statusLine, ...lines] = all.subarray(0, split).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body: all.subarray(split + 4) });
    });
  });
}

describe('the newcomer’s first hour (npm start, dashboard, a second worker)', { timeout: 180_000 }, () => {
  let dataDir: string;
  let start: Proc;
  let browser: Browser;
  let page: Page;
  let url: string;
  let api: StudioApi;
  const children: ChildProcess[] = [];
  const pageErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'newcomer-'));
    // `npm start`'s program, its output going to a pipe (not a terminal), like a CI log or a service.
    start = new Proc('npm-start', [join(ROOT, 'scripts', 'start.ts'), '--port', '0', '--data-dir', dataDir], newcomerEnv());
    url = (await start.waitForOutput(/studio\s+(http:\/\/127\.0\.0\.1:\d+)/))[1] as string;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    for (const child of children) {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // gone
      }
    }
    await browser?.close();
    await start?.stop('SIGTERM');
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints where the token is, and the sign-in page says the same (no link was printed: not a terminal)', async () => {
    const tokenFile = join(dataDir, 'admin-token');
    assert.match(start.output, new RegExp(`dashboard\\s+${url}/ \\(admin token in ${tokenFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    await page.goto(`${url}/`);
    const help = page.locator('#admin-token-help');
    await help.waitFor();
    assert.match((await help.textContent()) ?? '', new RegExp(`^The token is in ${tokenFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(npm start printed no link with it`));
    await shot('1-sign-in');
    const token = readFileSync(tokenFile, 'utf8').trim();
    api = new StudioApi(url, token);
    await page.getByLabel('Admin token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#feed-status[data-state="live"]').waitFor();
    const local = page.locator('#workers li.card', { hasText: 'local worker' });
    await local.locator('.badge', { hasText: /^online$/ }).waitFor();
    // No GPU here: the card does not say "0 GB (jobs up to 12 GB)".
    assert.match(await local.innerText(), /VRAM\s+not detected \(takes jobs up to 12 GB, as its operator set\)/);
    await shot('2-signed-in');
  });

  let jobId = '';
  it('submits the preselected model and sees the image within 2 s', async () => {
    // Preselected: what the online worker runs now (the picker follows the worker coming online).
    await page.waitForFunction(modelSelected, 'synthetic-image', { timeout: 2_000 });
    await page.locator('#image-prompt').fill('an aurora fox');
    const clicked = performance.now();
    await page.getByRole('button', { name: 'Submit job' }).click();
    await page.waitForFunction(resultImageLoaded, undefined, { timeout: 10_000 });
    const tookMs = performance.now() - clicked;
    assert.ok(tookMs < 2_000, `the image appeared ${Math.round(tookMs)} ms after Submit`);
    jobId = ((await page.locator('#job-detail h2 code').textContent()) ?? '').trim();
    assert.match(jobId, /^job-/);
    await shot('3-image');
  });

  it('downloads the image twice with a raw client (Connection: close); the studio keeps running', async () => {
    const first = await rawGet(`${url}/graphics/api/jobs/${jobId}/result`, api.token);
    const second = await rawGet(`${url}/graphics/api/jobs/${jobId}/result`, api.token);
    for (const answer of [first, second]) {
      assert.equal(answer.status, 200);
      assert.equal(Number(answer.headers['content-length']), answer.body.length, 'the whole file arrived');
    }
    assert.ok(first.body.equals(second.body), 'the same bytes both times');
    const meta = await sharp(first.body).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 512, 512]);
    assert.ok(start.alive, `the studio is still running:\n${start.output.slice(-2000)}`);
    assert.equal((await fetch(`${url}/graphics/api/health`)).status, 200);
  });

  it('cancels a long job from the dashboard; the worker’s engine stops within 2 s', async () => {
    const localApi = JSON.parse(readFileSync(join(dataDir, 'local-worker', 'local-api.json'), 'utf8')) as { url: string; token: string };
    const daemonBusy = async () => ((await (await fetch(`${localApi.url}/daemon/status`, { headers: { authorization: `Bearer ${localApi.token}` } })).json()) as { busy: boolean }).busy;
    // The largest image the synthetic engine makes: seconds of rendering.
    await page.locator('#image-prompt').fill('a very large canvas');
    await page.locator('#image-width').fill('8192');
    await page.locator('#image-height').fill('8192');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const detail = page.locator('#job-detail');
    await detail.locator('.status-line .badge', { hasText: /^running$/ }).waitFor();
    await waitFor('the worker busy with it', daemonBusy);
    await shot('4-long-job-running');
    await detail.getByRole('button', { name: 'Cancel job' }).click();
    const cancelled = performance.now();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
    await detail.locator('.status-line .badge', { hasText: /^cancelled$/ }).waitFor();
    await waitFor('the worker’s engine to stop', async () => !(await daemonBusy()), { timeoutMs: 5_000, intervalMs: 20 });
    const tookMs = performance.now() - cancelled;
    assert.ok(tookMs < 2_000, `the engine stopped ${Math.round(tookMs)} ms after the cancel (dialog included)`);
    await shot('5-long-job-cancelled');
  });

  it('registers a second worker as the README says; approving it brings it online within 2 s', async () => {
    const configPath = join(dataDir, 'w2', 'config.toml');
    const npmWorker = (args: string[]) => {
      const child = spawn('npm', ['run', 'worker', '--', ...args], { cwd: ROOT, env: newcomerEnv({ XDG_CONFIG_HOME: join(dataDir, 'xdg') }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let output = '';
      child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { exited, output: () => output };
    };
    const register = npmWorker(['register', '--api-base-url', `${url}/`, '--config', configPath]);
    assert.equal(await register.exited, 0, register.output());
    assert.match(register.output(), new RegExp(`next: npm run worker -- run --config ${configPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    npmWorker(['run', '--config', configPath]);
    const request = page.locator('#pending li.card');
    await request.waitFor({ timeout: 30_000 });
    await shot('6-pending');
    const approved = performance.now();
    await request.getByRole('button', { name: /^Approve/ }).click();
    const workers = page.locator('#workers li.card');
    await waitFor('the second worker online', async () => (await workers.locator('.badge', { hasText: /^online$/ }).count()) === 2, { timeoutMs: 10_000, intervalMs: 20 });
    const tookMs = performance.now() - approved;
    assert.ok(tookMs < 2_000, `online ${Math.round(tookMs)} ms after Approve`);
    assert.equal((await api.workers()).filter((w) => w.state === 'online').length, 2);
    await shot('7-second-worker-online');
  });

  it('the page threw no errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
