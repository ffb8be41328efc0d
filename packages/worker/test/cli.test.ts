import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfigText } from '../src/config/index.ts';
import { runCli } from '../src/cli/program.ts';
import { captureIo } from './helpers/capture-io.ts';
import { runCliProcess } from './helpers/daemon-process.ts';
import { useScenarios } from './helpers/scenario.ts';

const argv = (...args: string[]) => ['node', 'studio-worker', ...args];

describe('studio-worker CLI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('`version` and `--version` print the version', async () => {
    const io = captureIo();
    assert.equal(await runCli(argv('version'), io), 0);
    assert.match(io.stdout, /^studio-worker \d+\.\d+\.\d+\n$/);
    const flag = captureIo();
    assert.equal(await runCli(argv('--version'), flag), 0);
    assert.equal(flag.stdout, io.stdout);
  });

  it('unknown commands and options exit 2 with a hint', async () => {
    const io = captureIo();
    assert.equal(await runCli(argv('frobnicate'), io), 2);
    assert.match(io.stderr, /unknown command/);
    assert.match(io.stderr, /studio-worker --help/);
    const option = captureIo();
    assert.equal(await runCli(argv('status', '--nope'), option), 2);
  });

  it('`config` prints the path and the resolved TOML with secrets masked', async () => {
    const path = join(dir, 'masked.toml');
    await writeFile(path, 'auth_token = "tok-SECRET-1"\nregistration_secret = "SECRET-2"\nlocal_api_token = "SECRET-3"\nworker_id = "w-1"\nmystery = "SECRET-4"\n');
    const io = captureIo();
    assert.equal(await runCli(argv('config', '--config', path), io), 0);
    assert.ok(io.stdout.startsWith(`# ${path}\n`));
    assert.ok(!io.stdout.includes('SECRET') && !io.stderr.includes('SECRET'), io.stdout);
    assert.equal((io.stdout.match(/"…\(set\)"/g) ?? []).length, 3);
    assert.match(io.stdout, /worker_id = "w-1"/);
    assert.match(io.stdout, /\[advanced\]/);
  });

  it('a config error names the field and exits 1; a syntax error shows only the position', async () => {
    const bad = join(dir, 'bad.toml');
    await writeFile(bad, 'vram_threshold_gb = -2\n');
    const io = captureIo();
    assert.equal(await runCli(argv('status', '--config', bad), io), 1);
    assert.match(io.stderr, /config\.toml: vram_threshold_gb must be a number ≥ 0/);
    const broken = join(dir, 'broken.toml');
    await writeFile(broken, 'worker_id = "w"\nauth_token = "tok-SECRET-unterminated\n');
    const syntax = captureIo();
    assert.equal(await runCli(argv('config', '--config', broken), syntax), 1);
    assert.match(syntax.stderr, /line 2, column \d+/);
    assert.ok(!syntax.stderr.includes('SECRET'), syntax.stderr);
  });

  it('`status` without a daemon shows the config-derived registration', async () => {
    const path = join(dir, 'status.toml');
    await writeFile(path, 'registration_request_id = "rr-77"\nregistration_secret = "SECRET"\n');
    const io = captureIo();
    assert.equal(await runCli(argv('status', '--config', path), io), 0);
    assert.match(io.stdout, /registration:\s+pending operator approval \(request rr-77\)/);
    assert.match(io.stdout, /daemon:\s+not running/);
    assert.ok(!io.stdout.includes('SECRET'));
  });

  it('`register` on a missing config creates it with mode 0600', async () => {
    const path = join(dir, 'new', 'config.toml');
    const io = captureIo();
    assert.equal(await runCli(argv('register', '--config', path, '--label', 'lab pc'), io), 0);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(parseConfigText(await readFile(path, 'utf8')).label, 'lab pc');
  });

  it('`register --pool` sets the pool to register into, refuses a bad name, and "" clears it', async () => {
    const path = join(dir, 'pooled', 'config.toml');
    const io = captureIo();
    assert.equal(await runCli(argv('register', '--config', path, '--pool', 'gpu'), io), 0);
    assert.equal(parseConfigText(await readFile(path, 'utf8')).pool, 'gpu');
    assert.match(io.stdout, /pool: gpu/);
    const bad = captureIo();
    assert.notEqual(await runCli(argv('register', '--config', path, '--pool', 'GPU box'), bad), 0);
    assert.match(bad.stderr, /--pool must be 1 to 32 lowercase letters/);
    assert.equal(parseConfigText(await readFile(path, 'utf8')).pool, 'gpu', 'a refused name leaves the file alone');
    assert.equal(await runCli(argv('register', '--config', path, '--pool', ''), captureIo()), 0);
    assert.equal(parseConfigText(await readFile(path, 'utf8')).pool, undefined);
  });

  it('the bin wrapper runs the CLI under Node 24', async () => {
    const { spawn } = await import('node:child_process');
    const bin = new URL('../bin/studio-worker.js', import.meta.url).pathname;
    const output = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [bin, 'version'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.on('exit', () => resolve(text));
    });
    assert.match(output, /^studio-worker \d+\.\d+\.\d+/);
  });
});

describe('`studio-worker status` with a running daemon', () => {
  const scenario = useScenarios();

  it('reports the session, the current job and the engines from state.json', async () => {
    // The job outlasts the test; a short grace period hands it back on stop.
    const { studio, config, start } = await scenario({ extra: 'shutdown_grace_secs = 0.1' });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send({
      type: 'offer',
      claim: {
        jobId: 'status-job',
        model: 'synthetic-llm',
        task: { kind: 'llm', messages: [{ role: 'user', content: 'hi' }] },
        modelSource: { engine: 'synthetic', cliDefaults: { delayMs: 60_000 } },
        attempt: 1,
      },
    });
    await connection.jobFrame('accept', 'status-job');
    await daemon.waitForState((s) => s.currentJobIds.includes('status-job'), 'the job in state.json');
    const result = await runCliProcess(['status', '--config', config.configPath]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /registration:\s+approved as w-test/);
    assert.match(result.stdout, new RegExp(`daemon:\\s+running \\(pid ${daemon.pid}`));
    assert.match(result.stdout, /session:\s+connected/);
    assert.match(result.stdout, /current job:\s+status-job/);
    assert.match(result.stdout, /engines:\s+synthetic: available/);
    assert.equal((await daemon.stop()).code, 0);
  });
});
