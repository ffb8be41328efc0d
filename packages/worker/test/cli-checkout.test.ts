// The CLI as a user of this repository runs it: `npm run worker -- …` with no --config finds the
// worker `npm start` runs, `status` says which config it took, and a "next:" hint runs as printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { commandHint, resolveConfigPath } from '../src/config/invocation.ts';
import { DaemonProcess, makeConfig, REPO_ROOT, runCliProcess } from './helpers/daemon-process.ts';
import { FakeStudio } from './helpers/fake-studio.ts';

describe('the CLI in a checkout', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('without --config, status finds the daemon npm start runs and says so; the register hint runs as printed', { timeout: 60_000 }, async () => {
    const studio = await FakeStudio.start();
    cleanups.push(() => studio.close());
    const made = await makeConfig(studio.url);
    cleanups.push(() => made.cleanup());
    // npm start's data dir (STUDIO_DATA_DIR, as `npm start` reads it) with its local worker's config.
    const dataDir = await mkdtemp(join(tmpdir(), 'checkout-data-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const configPath = join(dataDir, 'local-worker', 'config.toml');
    await mkdir(join(dataDir, 'local-worker'));
    await copyFile(made.configPath, configPath);
    const env = { STUDIO_DATA_DIR: dataDir, XDG_CONFIG_HOME: '', HOME: dataDir };

    const daemon = new DaemonProcess(configPath);
    cleanups.push(() => void (daemon.exitInfo || daemon.child.kill('SIGKILL')));
    await studio.ready(0);
    const status = await runCliProcess(['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.ok(status.stdout.includes(`${configPath} (npm start's local worker: the default in this checkout`), status.stdout);
    assert.match(status.stdout, new RegExp(`daemon:\\s+running \\(pid ${daemon.pid}`));
    assert.equal((await daemon.stop()).code, 0);

    const register = await runCliProcess(['register', '--label', 'attic'], env);
    assert.equal(register.code, 0, register.stderr);
    const hint = /^next: (.*?) {2}\(/m.exec(register.stdout)?.[1];
    assert.equal(hint, `npm run worker -- run --config ${configPath}`);
    // As printed, from the repository: it starts the same worker again.
    const typed = spawn('sh', ['-c', hint ?? 'false'], { cwd: REPO_ROOT, env: { ...process.env, ...env, NO_PRETTY_LOGS: '1' }, detached: true, stdio: 'ignore' });
    cleanups.push(() => {
      try {
        process.kill(-(typed.pid as number), 'SIGKILL');
      } catch {
        // gone
      }
    });
    const connection = await studio.ready(1);
    assert.equal(connection.workerId, 'w-test');
  });

  it('resolveConfigPath: --config, then npm start’s config where it exists (unless XDG_CONFIG_HOME is set), then the per-user one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'checkout-root-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const env = { HOME: root };
    assert.deepEqual(resolveConfigPath('x.toml', env, root), { path: join(process.cwd(), 'x.toml'), source: 'flag' });
    assert.equal(resolveConfigPath(undefined, env, root).source, 'user', 'no npm start config yet');
    await mkdir(join(root, '.data', 'local-worker'), { recursive: true });
    await copyFile(join(REPO_ROOT, 'package.json'), join(root, '.data', 'local-worker', 'config.toml'));
    assert.deepEqual(resolveConfigPath(undefined, env, root), { path: join(root, '.data', 'local-worker', 'config.toml'), source: 'npm-start' });
    assert.equal(resolveConfigPath(undefined, { ...env, XDG_CONFIG_HOME: join(root, 'xdg') }, root).source, 'user');
    assert.equal(resolveConfigPath(undefined, env, null).source, 'user', 'an installed package has no checkout');
    assert.equal(commandHint(join(root, 'my config.toml'), 'run', env, null), `studio-worker run --config '${join(root, 'my config.toml')}'`);
    assert.equal(commandHint(join(root, 'xdg', 'studio-worker', 'config.toml'), 'run', { XDG_CONFIG_HOME: join(root, 'xdg') }, null), 'studio-worker run');
  });
});
