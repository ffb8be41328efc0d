import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { captureIo } from '../helpers/capture-io.ts';
import { uiCommand } from '../../src/cli/commands/ui.ts';
import { isProcessAlive } from '../../src/platform/lock.ts';
import { readLocalApiInfo } from '../../src/ops/local-api-info.ts';
import { WORKER_BIN } from '../../src/ops/host.ts';
import { recordingRunner, testHost } from './fixtures/host.ts';

const FAKE_DAEMON = join(import.meta.dirname, 'fixtures', 'fake-daemon.ts');

describe('studio-worker ui', () => {
  let root: string;
  let configPath: string;
  const started: number[] = [];
  const children: ChildProcess[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ops-ui-'));
  });

  afterEach(async () => {
    // Every daemon a test started (ui starts them detached) goes away with its test.
    const info = configPath ? await readLocalApiInfo(configPath) : null;
    for (const pid of [...started.splice(0), ...(info?.pid ? [info.pid] : [])]) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    for (const child of children.splice(0)) child.kill('SIGKILL');
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const freshConfig = async (name: string) => {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    configPath = join(dir, 'config.toml');
    return configPath;
  };

  const host = (env: Record<string, string> = {}, run = recordingRunner()) =>
    testHost(root, { node: process.execPath, bin: FAKE_DAEMON, env: { ...process.env, ...env }, run });

  it('starts a daemon when none runs, waits for its local API, and opens the UI with the token in the fragment', async () => {
    const config = await freshConfig('starts');
    const run = recordingRunner();
    const io = captureIo();
    const code = await uiCommand(config, { open: true }, io, { host: host({ DISPLAY: ':0' }, run), isTerminal: true });
    assert.equal(code, 0, io.stderr);
    const info = await readLocalApiInfo(config);
    assert.ok(info?.pid, 'the daemon wrote local-api.json and is alive');
    started.push(info.pid);
    assert.match(io.stdout, new RegExp(`started the daemon \\(pid ${info.pid}\\)`));
    assert.deepEqual(run.calls.map((call) => [call.command, ...call.args]), [['xdg-open', `${info.url}/#token=fake-local-token`]]);
    assert.match(io.stdout, /opened the web UI in your browser/);
    // Detached, in its own process group, output appended to logs/daemon.out.
    assert.match(readFileSync(join(config, '..', 'logs', 'daemon.out'), 'utf8'), new RegExp(`fake daemon ${info.pid} starting`));
    const pgid = readFileSync(`/proc/${info.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2];
    assert.equal(Number(pgid), info.pid, 'the daemon leads its own process group');
  });

  it('uses the daemon that already runs (no second one) and prints the URL with --no-open', async () => {
    const config = await freshConfig('running');
    const daemon = spawn(process.execPath, [FAKE_DAEMON, 'run', '--config', config], { stdio: 'ignore' });
    children.push(daemon);
    await waitForFile(join(config, '..', 'daemon.lock'));
    const first = captureIo();
    // The first call waits for the daemon above (it holds the lock) instead of starting another.
    assert.equal(await uiCommand(config, { open: false }, first, { host: host(), isTerminal: true }), 0, first.stderr);
    assert.doesNotMatch(first.stdout, /started the daemon/);
    const io = captureIo();
    const run = recordingRunner();
    assert.equal(await uiCommand(config, { open: false }, io, { host: host({}, run), isTerminal: true }), 0, io.stderr);
    assert.match(io.stdout, new RegExp(`the daemon is already running \\(pid ${daemon.pid}\\)`));
    assert.match(io.stdout, /web UI: http:\/\/127\.0\.0\.1:\d+\/#token=fake-local-token/);
    assert.equal(run.calls.length, 0, '--no-open never starts a browser');
    assert.doesNotMatch(io.stdout, /started the daemon/);
  });

  it('with the real daemon: starts `studio-worker run` detached and prints a URL whose /healthz answers', async () => {
    const config = await freshConfig('real');
    // No studio at this address: the daemon keeps retrying it, which does not matter to its local API.
    await writeFile(config, 'local_api_port = 0\napi_base_url = "http://127.0.0.1:9/"\n');
    const io = captureIo();
    const code = await uiCommand(config, { open: false }, io, { host: testHost(root, { node: process.execPath, bin: WORKER_BIN, env: process.env }), isTerminal: true });
    const info = await readLocalApiInfo(config);
    if (info?.pid) started.push(info.pid);
    assert.equal(code, 0, io.stderr);
    assert.ok(info?.pid);
    assert.match(io.stdout, new RegExp(`started the daemon \\(pid ${info.pid}\\)`));
    const printed = io.stdout.match(/web UI: (http:\/\/127\.0\.0\.1:\d+)\/#token=(\S+)/);
    assert.ok(printed, io.stdout);
    assert.equal(printed[2], encodeURIComponent(info.token));
    const health = (await (await fetch(`${printed[1]}/healthz`)).json()) as { ok: boolean };
    assert.equal(health.ok, true);
  });

  it('two ui commands at once end with one daemon, used by both', async () => {
    const config = await freshConfig('race');
    const [a, b] = [captureIo(), captureIo()];
    const codes = await Promise.all([
      uiCommand(config, { open: false }, a, { host: host(), isTerminal: true }),
      uiCommand(config, { open: false }, b, { host: host(), isTerminal: true }),
    ]);
    assert.deepEqual(codes, [0, 0], a.stderr + b.stderr);
    const info = await readLocalApiInfo(config);
    assert.ok(info?.pid);
    started.push(info.pid);
    const startedPids = [...`${a.stdout}${b.stdout}`.matchAll(/started the daemon \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.ok(startedPids.includes(info.pid));
    for (const pid of startedPids.filter((pid) => pid !== info.pid)) {
      assert.match(`${a.stdout}${b.stdout}`, new RegExp(`another daemon \\(pid ${info.pid}\\) took the lock first`));
      await waitUntil(`the losing daemon ${pid} to exit`, () => !runningNotZombie(pid));
    }
    assert.ok(runningNotZombie(info.pid));
    for (const out of [a.stdout, b.stdout]) assert.match(out, new RegExp(`web UI: ${info.url}/#token=`));
  });

  it('without a terminal, prints the URL without the token and says where the token is', async () => {
    const config = await freshConfig('no-tty');
    const io = captureIo();
    assert.equal(await uiCommand(config, { open: true }, io, { host: host({ DISPLAY: '', WAYLAND_DISPLAY: '' }), isTerminal: false }), 0, io.stderr);
    const info = await readLocalApiInfo(config);
    if (info?.pid) started.push(info.pid);
    assert.match(io.stdout, /could not open a browser: no graphical session/);
    assert.match(io.stdout, new RegExp(`web UI: http://127\\.0\\.0\\.1:\\d+/ \\(its token is in ${join(config, '..', 'local-api.json').replaceAll('/', '\\/')}`));
    assert.doesNotMatch(io.stdout, /fake-local-token/);
  });

  it('a daemon that exits at start: exit 1 with its own words and where its output is', async () => {
    const config = await freshConfig('exits');
    const io = captureIo();
    const code = await uiCommand(config, { open: false }, io, { host: host({ FAKE_DAEMON_MODE: 'exit1' }), isTerminal: true });
    assert.equal(code, 1);
    assert.match(io.stderr, /the daemon exited at start \(exit code 1\)/);
    assert.match(io.stderr, /api_base_url must be an http or https URL/);
    assert.match(io.stderr, /logs[\\/]daemon\.out\) and run `studio-worker ui` again/);
  });

  it('a lock held without a local API: says the daemon seems stuck and how to stop it', async () => {
    const config = await freshConfig('stuck');
    const daemon = spawn(process.execPath, [FAKE_DAEMON, 'run', '--config', config], { stdio: 'ignore', env: { ...process.env, FAKE_DAEMON_MODE: 'no-api' } });
    children.push(daemon);
    const lock = join(config, '..', 'daemon.lock');
    await waitForFile(lock);
    const io = captureIo();
    const code = await uiCommand(config, { open: false }, io, { host: host(), isTerminal: true, readyTimeoutMs: 600 });
    assert.equal(code, 1);
    assert.match(io.stderr, new RegExp(`the daemon \\(pid ${daemon.pid}\\) holds .*daemon\\.lock but its local API did not come up`));
    assert.match(io.stderr, new RegExp(`seems stuck.*stop it with \`kill ${daemon.pid}\``));
    assert.ok(isProcessAlive(daemon.pid ?? -1), 'ui never kills a daemon it did not start');
  });

  it('a broken config.toml stops before any daemon starts', async () => {
    const config = await freshConfig('broken');
    await writeFile(config, 'vram_threshold_gb = "lots"\n');
    const io = captureIo();
    assert.equal(await uiCommand(config, { open: false }, io, { host: host(), isTerminal: true }), 1);
    assert.match(io.stderr, /studio-worker ui: .*vram_threshold_gb/);
    assert.equal(existsSync(join(config, '..', 'daemon.lock')), false);
  });

  it('--tray without systray2 installed: the UI still comes up, then a clear message and exit 1', async () => {
    const config = await freshConfig('tray');
    const io = captureIo();
    const code = await uiCommand(config, { open: false, tray: true }, io, {
      host: host(),
      isTerminal: true,
      loadSystray: async () => {
        const { loadSystray } = await import('../../src/ops/tray.ts');
        return loadSystray((name) => import(`${name}-not-installed-here`));
      },
    });
    const info = await readLocalApiInfo(config);
    if (info?.pid) started.push(info.pid);
    assert.equal(code, 1);
    assert.match(io.stdout, /web UI: http/);
    assert.match(io.stderr, /no tray icon: the tray icon needs the optional package systray2/);
    assert.match(io.stderr, /libayatana-appindicator/);
  });
});

/** Alive and not a zombie waiting to be reaped (kill(pid, 0) succeeds on those too). */
function runningNotZombie(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitForFile(path: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} never appeared`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
