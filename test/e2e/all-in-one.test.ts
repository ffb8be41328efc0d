// `npm start`'s launcher as a real process: studio + dashboard + an auto-approved local worker;
// a prompt becomes an image; SIGTERM (what PM2/systemd send) and Ctrl-C (SIGINT to the whole
// process group) stop both cleanly, and no worker process is left behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import sharp from 'sharp';
import { StudioApi } from '../helpers/api.ts';
import { Proc, ROOT, WORKER_BIN } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function launch(dataDir: string): Promise<{ proc: Proc; api: StudioApi; workerPid: number }> {
  const proc = new Proc('npm-start', [join(ROOT, 'scripts', 'start.ts'), '--port', '0', '--data-dir', dataDir], { STUDIO_ADMIN_TOKEN: '' });
  const url = (await proc.waitForOutput(/studio\s+(http:\/\/127\.0\.0\.1:\d+)/))[1] as string;
  const api = new StudioApi(url, readFileSync(join(dataDir, 'admin-token'), 'utf8').trim());
  await waitFor('the local worker online', async () => (await api.workers()).some((w) => w.state === 'online'));
  const state = JSON.parse(readFileSync(join(dataDir, 'local-worker', 'state.json'), 'utf8')) as { pid: number };
  return { proc, api, workerPid: state.pid };
}

/**
 * The launcher spawned by hand in its own process group, like a terminal's foreground job. (Proc
 * would SIGKILL the whole group when the launcher exits, and these tests are about that group.)
 */
async function launchInGroup(
  dataDir: string,
  t: TestContext,
  via: 'node' | 'npm' = 'node',
): Promise<{ child: ChildProcess; api: StudioApi; workerPid: number; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
  const options = ['--port', '0', '--data-dir', dataDir];
  // `npm`: the real `npm start`, as a user or a supervisor runs it (npm, then whatever its script starts).
  const [command, args] = via === 'npm' ? ['npm', ['start', '--', ...options]] : [process.execPath, [join(ROOT, 'scripts', 'start.ts'), ...options]];
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, NO_PRETTY_LOGS: '1', STUDIO_ADMIN_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  // Whatever happens in the test, the launcher's group (launcher + worker) does not outlive it.
  t.after(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  });
  const url = await waitFor('the studio URL', () => /studio\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]);
  const api = new StudioApi(url, readFileSync(join(dataDir, 'admin-token'), 'utf8').trim());
  await waitFor('the local worker online', async () => (await api.workers()).some((w) => w.state === 'online'));
  const workerPid = (JSON.parse(readFileSync(join(dataDir, 'local-worker', 'state.json'), 'utf8')) as { pid: number }).pid;
  return { child, api, workerPid, output: () => output, exited };
}

describe('npm start (the embedded default)', () => {
  it('serves the dashboard, turns a prompt into an image, and stops cleanly on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
    dirs.push(dataDir);
    const { proc, api, workerPid } = await launch(dataDir);
    const page = await fetch(`${api.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const [job] = await api.createJobs([{ model: 'synthetic-image', task: { kind: 'image', prompt: 'an aurora fox', width: 320, height: 200 } }]);
    assert.ok(job);
    await waitFor('the image', async () => (await api.job(job.id)).status === 'done', { timeoutMs: 5_000 });
    const image = await api.result(job.id);
    const meta = await sharp(image.bytes).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 320, 200]);
    assert.equal((await proc.stop('SIGTERM')).code, 0);
    await waitFor('the worker process to be gone', () => !alive(workerPid), { timeoutMs: 5_000 });
  });

  it('keeps the same local worker across restarts and reuses the admin token', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
    dirs.push(dataDir);
    const first = await launch(dataDir);
    const [firstWorker] = await first.api.workers();
    await first.proc.stop('SIGTERM');
    const second = await launch(dataDir);
    const workers = await second.api.workers();
    assert.deepEqual(workers.map((w) => w.id), [firstWorker?.id], 'one local worker, the same one');
    assert.equal(second.api.token, first.api.token);
    await second.proc.stop('SIGTERM');
  });

  it('a launcher killed with SIGKILL leaves no orphan: its worker notices and stops by itself', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
    dirs.push(dataDir);
    const { child, workerPid, exited } = await launchInGroup(dataDir, t);
    // The launcher alone, not its group: it cannot forward anything (kill -9, the OOM killer).
    process.kill(child.pid as number, 'SIGKILL');
    assert.equal((await exited).signal, 'SIGKILL');
    await waitFor('the orphaned worker to stop', () => !alive(workerPid), { timeoutMs: 15_000 });
    const daemonLog = readFileSync(join(dataDir, 'local-worker', 'logs', 'daemon.log'), 'utf8');
    assert.match(daemonLog, new RegExp(`the process that started this daemon \\(pid ${child.pid}\\) is gone; stopping`));
    assert.match(daemonLog, /"op":"shutdown"[^\n]*"msg":"stopped"/, 'a graceful stop, not a crash');
  });

  it('Ctrl-C (SIGINT to the whole process group) hands a running job back instead of losing it', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
    dirs.push(dataDir);
    const { child, api, workerPid, output, exited } = await launchInGroup(dataDir, t);
    await api.json('POST', '/models', { id: 'slow-image', kind: 'image', source: { engine: 'synthetic', cliDefaults: { delayMs: 60_000 } } });
    const [job] = await api.createJobs([{ model: 'slow-image', task: { kind: 'image', prompt: 'slow' } }]);
    assert.ok(job);
    await waitFor('the slow job running', async () => (await api.job(job.id)).status === 'running');
    process.kill(-(child.pid as number), 'SIGINT');
    assert.equal((await exited).code, 0, output().slice(-2000));
    await waitFor('the worker process to be gone', () => !alive(workerPid), { timeoutMs: 5_000 });
    // The studio recorded the claim as handed back (not lost to a lease, not failed).
    assert.match(output(), /"op":"claim"[^\n]*"ending":"handed_back"/, 'the worker handed the job back before exiting');
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to the npm process itself (what a supervisor sends) stops the launcher and its worker cleanly`, { timeout: 60_000 }, async (t) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
      dirs.push(dataDir);
      const { child: npm, output } = await launchInGroup(dataDir, t, 'npm');
      const group = groupPids(npm.pid as number);
      assert.ok(group.length >= 3, `npm, the launcher and the worker run: ${group.join(' ')}`);
      process.kill(npm.pid as number, signal);
      await waitFor('every process of npm start to exit', () => groupPids(npm.pid as number).length === 0, { timeoutMs: 20_000 });
      const daemonLog = readFileSync(join(dataDir, 'local-worker', 'logs', 'daemon.log'), 'utf8');
      assert.match(daemonLog, /"op":"shutdown"[^\n]*"msg":"stopped"/, 'the worker stopped gracefully');
      assert.doesNotMatch(output(), /second signal/, output().slice(-2000));
    });
  }

  it('SIGTERM to the local worker alone stops the launcher too (exit 0), instead of restarting it', { timeout: 60_000 }, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
    dirs.push(dataDir);
    const { workerPid, exited, output } = await launchInGroup(dataDir, t);
    process.kill(workerPid, 'SIGTERM');
    assert.equal((await exited).code, 0, output().slice(-2000));
    assert.doesNotMatch(output(), /restarting/);
  });

  it('a local worker displaced by a copy of its credentials (4003) is not restarted; the studio keeps running', { timeout: 60_000 }, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-start-'));
    dirs.push(dataDir);
    const { child, api, workerPid, output } = await launchInGroup(dataDir, t);
    // The same worker id and token from another config dir: the studio keeps the newest session.
    const copyDir = mkdtempSync(join(tmpdir(), 'e2e-copy-'));
    dirs.push(copyDir);
    const config = readFileSync(join(dataDir, 'local-worker', 'config.toml'), 'utf8').replace(/^local_api_port.*$/m, '');
    writeFileSync(join(copyDir, 'config.toml'), `${config}\nlocal_api_port = 0\n`, { mode: 0o600 });
    const copy = new Proc('copy-worker', [WORKER_BIN, 'run', '--config', join(copyDir, 'config.toml')], {});
    t.after(() => copy.stop('SIGKILL'));
    await waitFor('the launcher to report the displaced worker', () => /another process connected with its worker id/.test(output()), { timeoutMs: 20_000 });
    await waitFor('the displaced worker process to be gone', () => !alive(workerPid), { timeoutMs: 10_000 });
    assert.equal(child.exitCode, null, 'the launcher (and its studio) keeps running');
    assert.doesNotMatch(output(), /local worker exited; restarting/);
    assert.equal((await api.workers()).filter((w) => w.state === 'online').length, 1, 'the copy is the one online');
  });
});

/** The live processes of a process group (Linux and macOS `ps`). */
function groupPids(pgid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=,stat=', '-g', String(pgid)], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, stat]) => pid && stat && !stat.startsWith('Z'))
    .map(([pid]) => Number(pid));
}
