import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureIo } from '../helpers/capture-io.ts';
import { installServiceCommand, uninstallServiceCommand } from '../../src/cli/commands/service.ts';
import { setupCommand } from '../../src/cli/commands/setup.ts';
import { isProcessAlive } from '../../src/platform/lock.ts';
import { readLocalApiInfo } from '../../src/ops/local-api-info.ts';
import { recordingRunner, testHost } from './fixtures/host.ts';

const FAKE_DAEMON = join(import.meta.dirname, 'fixtures', 'fake-daemon.ts');

describe('setup, install-service, uninstall-service', () => {
  let home: string;
  let config: string;
  const desktopFile = () => join(home, '.config', 'autostart', 'studio-worker.desktop');
  const unitFile = () => join(home, '.config', 'systemd', 'user', 'studio-worker.service');
  const pids: number[] = [];

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'ops-setup-'));
    config = join(home, 'worker', 'config.toml');
    await mkdir(join(home, 'worker'));
    await writeFile(config, 'api_base_url = "https://studio.example/"\nregistration_request_id = "rr-42"\n');
  });

  after(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    await rm(home, { recursive: true, force: true });
  });

  it('setup --no-start installs the login entry and prints the next steps', async () => {
    const io = captureIo();
    assert.equal(await setupCommand(config, { start: false }, io, { host: testHost(home) }), 0, io.stderr);
    assert.ok(existsSync(desktopFile()));
    assert.match(io.stdout, new RegExp(`installed the login entry ${desktopFile()}: at login it runs \`studio-worker ui --no-open\``));
    assert.match(io.stdout, /machine name: +test-box \(the name the studio operator sees and approves\)/);
    assert.match(io.stdout, /studio: +https:\/\/studio\.example\/graphics\/api/);
    assert.match(io.stdout, /registration: +pending operator approval \(request rr-42\)/);
    assert.match(io.stdout, new RegExp(`local API: +URL and token in ${join(home, 'worker', 'local-api.json')}`));
    assert.match(io.stdout, /web UI: +studio-worker ui/);
    assert.match(io.stdout, /uninstall: +studio-worker setup --remove/);
    assert.match(io.stdout, /not starting the daemon now \(--no-start\)/);

    const again = captureIo();
    assert.equal(await setupCommand(config, { start: false }, again, { host: testHost(home) }), 0);
    assert.match(again.stdout, /login entry already up to date/);
  });

  it('install-service removes the login entry, stops a daemon running outside the service, and enables the unit', async () => {
    const daemon = spawn(process.execPath, [FAKE_DAEMON, 'run', '--config', config], { stdio: 'ignore' });
    const info = await waitFor(() => readLocalApiInfo(config));
    assert.equal(info.pid, daemon.pid);
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    const run = recordingRunner();
    const io = captureIo();
    assert.equal(await installServiceCommand(config, io, { host: testHost(home, { run }) }), 0, io.stderr);
    await exited;
    assert.equal(existsSync(desktopFile()), false, 'the login entry is gone: one or the other');
    assert.ok(existsSync(unitFile()));
    assert.deepEqual(run.calls.map((call) => [call.command, ...call.args].join(' ')), ['systemctl --user daemon-reload', 'systemctl --user enable --now studio-worker.service']);
    assert.match(io.stdout, /removed the login entry .*\(the service replaces it; use one or the other\)/);
    assert.match(io.stdout, new RegExp(`stopped the running daemon \\(pid ${daemon.pid}\\); the service starts its own`));
    assert.match(io.stdout, /the service is installed and running/);
    assert.match(io.stdout, /journalctl --user -u studio-worker\.service -f/);
    assert.match(io.stdout, /remove it: studio-worker uninstall-service/);
    assert.equal(existsSync(join(home, 'worker', 'daemon.lock')), false);
  });

  it('setup removes the service again (they are alternatives), then starts the daemon through ui', async () => {
    const run = recordingRunner();
    const io = captureIo();
    const host = testHost(home, { run, node: process.execPath, bin: FAKE_DAEMON, env: { ...process.env, XDG_CONFIG_HOME: join(home, '.config'), DISPLAY: '' } });
    assert.equal(await setupCommand(config, {}, io, { host, isTerminal: true }), 0, io.stderr);
    const info = await readLocalApiInfo(config);
    assert.ok(info?.pid);
    pids.push(info.pid);
    assert.equal(existsSync(unitFile()), false);
    assert.ok(existsSync(desktopFile()));
    assert.equal(run.calls[0]?.args.join(' '), '--user disable --now studio-worker.service');
    assert.match(io.stdout, /removed the studio-worker service \(the login entry replaces it; use one or the other\)/);
    assert.match(io.stdout, /started the daemon \(pid \d+\)/);
    assert.match(io.stdout, /web UI: http:\/\/127\.0\.0\.1:\d+\/#token=fake-local-token/);
  });

  it('setup --remove removes the login entry and says the daemon keeps running until stopped', async () => {
    const io = captureIo();
    assert.equal(await setupCommand(config, { remove: true }, io, { host: testHost(home) }), 0);
    assert.equal(existsSync(desktopFile()), false);
    const pid = pids[0] as number;
    assert.ok(isProcessAlive(pid));
    assert.match(io.stdout, new RegExp(`the daemon \\(pid ${pid}\\) keeps running until you stop it: kill ${pid}`));
    const again = captureIo();
    await setupCommand(config, { remove: true }, again, { host: testHost(home) });
    assert.match(again.stdout, /no login entry to remove/);
  });

  it('uninstall-service without a service says so and what the alternative is', async () => {
    const io = captureIo();
    const run = recordingRunner((call) => (call.args.includes('disable') ? { code: 1, stderr: 'Unit file studio-worker.service does not exist.' } : {}));
    assert.equal(await uninstallServiceCommand(config, io, { host: testHost(home, { run }) }), 0);
    assert.match(io.stdout, /no studio-worker service was installed/);
    assert.match(io.stdout, /to start the worker at login without a service: studio-worker setup/);
  });

  it('a broken config: setup and install-service stop with the config message and exit 1', async () => {
    const broken = join(home, 'broken', 'config.toml');
    await mkdir(join(home, 'broken'));
    await writeFile(broken, 'shutdown_grace_secs = -1\n');
    const io = captureIo();
    assert.equal(await setupCommand(broken, { start: false }, io, { host: testHost(home) }), 1);
    assert.equal(await installServiceCommand(broken, io, { host: testHost(home) }), 1);
    assert.match(io.stderr, /studio-worker setup: .*shutdown_grace_secs/);
    assert.match(io.stderr, /studio-worker install-service: .*shutdown_grace_secs/);
    assert.equal(readFileSync(broken, 'utf8'), 'shutdown_grace_secs = -1\n');
  });
});

async function waitFor<T>(check: () => Promise<T | null | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
