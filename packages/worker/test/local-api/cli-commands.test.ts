import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/index.ts';
import { runCliProcess } from '../helpers/daemon-process.ts';
import { useScenarios } from '../helpers/scenario.ts';
import { Changes } from '../helpers/wait.ts';
import { Api, EPHEMERAL_PORT } from './harness.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));
const CLI = join(REPO_ROOT, 'packages/worker/src/cli/main.ts');

/** `studio-worker logs --follow` as a child process whose output can be waited on. */
function followLogs(configPath: string) {
  const child = spawn(process.execPath, [CLI, 'logs', '--follow', '--lines', '3', '--config', configPath], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const changes = new Changes();
  const output = { stdout: '', stderr: '', exit: undefined as number | null | undefined };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output.stdout += chunk;
    changes.signal();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output.stderr += chunk;
    changes.signal();
  });
  child.on('exit', (code) => {
    output.exit = code;
    changes.signal();
  });
  return { child, output, changes };
}

describe('CLI commands against a running daemon and without one (real processes)', () => {
  const scenario = useScenarios();

  it('status, pause, resume, set-threshold and logs go through the local API of the running daemon', async () => {
    const { studio, config, start } = await scenario({ extra: EPHEMERAL_PORT });
    const daemon = start();
    const api = await Api.of(daemon);
    await studio.ready(0);
    const cli = (...args: string[]) => runCliProcess([...args, '--config', config.configPath]);

    const status = await cli('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`daemon:\\s+running \\(pid ${daemon.pid}, version \\d`));
    assert.match(status.stdout, new RegExp(`local api:\\s+${api.url.replace(/[.]/g, '\\.')}`));
    assert.match(status.stdout, /session:\s+connected \(last heartbeat \d\d:\d\d:\d\d\)/);
    assert.match(status.stdout, /engines:\s+synthetic: available; sd-cpp: unavailable — sd-cli not found/);
    assert.match(status.stdout, /registration:\s+approved as w-test/);

    const paused = await cli('pause');
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /^paused: /);
    assert.equal((await api.get('/daemon/status')).json.paused, true);
    assert.match((await cli('status')).stdout, /daemon:\s+running .*paused/);
    const resumed = await cli('resume');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((await api.get('/daemon/status')).json.paused, false);

    const threshold = await cli('set-threshold', '5.5');
    assert.equal(threshold.code, 0, threshold.stderr);
    assert.match(threshold.stdout, new RegExp(`running daemon \\(pid ${daemon.pid}\\)`));
    assert.equal((await api.get('/daemon/config')).json.vramThresholdGb, 5.5);
    assert.equal(parseConfigText(await readFile(config.configPath, 'utf8')).vramThresholdGb, 5.5);
    const badThreshold = await cli('set-threshold', 'lots');
    assert.equal(badThreshold.code, 2);
    assert.match(badThreshold.stderr, /"lots" is not a number of GB ≥ 0; e\.g\. studio-worker set-threshold 8/);

    const logs = await cli('logs', '--lines', '1000');
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^\S+Z INFO  \[daemon\] studio-worker \S+ starting/m);
    assert.match(logs.stdout, /INFO  \[daemon\] claiming paused by operator/);
    const lastTwo = await cli('logs', '--lines', '2');
    assert.equal(lastTwo.stdout.trimEnd().split('\n').length, 2);
    const warnings = await cli('logs', '--level', 'warn');
    assert.ok(warnings.stdout.split('\n').filter(Boolean).every((line) => / (WARN |ERROR|FATAL) /.test(line)), warnings.stdout);
    assert.equal((await cli('logs', '--level', 'loud')).code, 2);

    // --follow prints what happens next, and Ctrl-C ends it with 0.
    const follow = followLogs(config.configPath);
    await follow.changes.waitFor(() => (follow.output.stdout.split('\n').length > 3 ? true : undefined), 'the first lines');
    const seen = follow.output.stdout.length;
    await api.post('/daemon/pause');
    await follow.changes.waitFor(() => (follow.output.stdout.slice(seen).includes('INFO  [daemon] claiming paused by operator') ? true : undefined), 'the new line, followed');
    follow.child.kill('SIGINT');
    await follow.changes.waitFor(() => (follow.output.exit !== undefined ? true : undefined), 'logs --follow to exit');
    assert.equal(follow.output.exit, 0, follow.output.stderr);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('without a daemon: pause/resume exit 4 saying how to start one; logs read the file; set-threshold edits config.toml', async () => {
    const { studio, config, start } = await scenario({ extra: EPHEMERAL_PORT });
    const daemon = start();
    await studio.ready(0);
    const stale = await readFile(join(config.dir, 'local-api.json'), 'utf8');
    assert.equal((await daemon.stop()).code, 0);
    // A local-api.json left by a daemon that was killed must not count as a running daemon.
    await writeFile(join(config.dir, 'local-api.json'), stale);
    const cli = (...args: string[]) => runCliProcess([...args, '--config', config.configPath]);
    // From a checkout the CLI is `npm run worker --`, and the hint names the config it was given.
    const expected = `no daemon is running for ${config.dir}; start it with npm run worker -- run --config ${config.configPath}`;

    for (const command of ['pause', 'resume']) {
      const result = await cli(command);
      assert.equal(result.code, 4, `${command}: ${result.stderr}`);
      assert.equal(result.stderr.trim(), `studio-worker ${command}: ${expected}`);
    }
    const logs = await cli('logs', '--lines', '5');
    assert.equal(logs.code, 0, logs.stderr);
    assert.ok(logs.stderr.includes(`${expected}; showing ${join(config.dir, 'logs', 'daemon.log')}`));
    const lines = logs.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 5);
    assert.match(lines.at(-1) ?? '', /INFO  \[daemon\] stopped$/);
    const debug = await cli('logs', '--lines', '100000', '--level', 'debug');
    assert.match(debug.stdout, /DEBUG/, 'the file has what the daemon wrote, debug included');
    const follow = await cli('logs', '--follow');
    assert.equal(follow.code, 4);
    assert.match(follow.stderr, /cannot follow: no daemon is running/);

    const threshold = await cli('set-threshold', '3');
    assert.equal(threshold.code, 0, threshold.stderr);
    assert.match(threshold.stdout, /uses it when it starts/);
    assert.equal(parseConfigText(await readFile(config.configPath, 'utf8')).vramThresholdGb, 3);
    const status = await cli('status');
    assert.equal(status.code, 0);
    assert.ok(status.stdout.includes(`daemon:         not running (start it with \`npm run worker -- run --config ${config.configPath}\`)`), status.stdout);
    assert.match(status.stdout, /vram threshold:\s+3 GB/);
  });

  it('logs with no daemon and no log file exits 4; --help lists the exit codes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'studio-worker-cli-'));
    try {
      const result = await runCliProcess(['logs', '--config', join(dir, 'config.toml')]);
      assert.equal(result.code, 4);
      assert.match(result.stderr, /no daemon is running for .*; start it with npm run worker -- run --config .*config\.toml \(and there is no log file at .*daemon\.log yet\)/);
      const help = await runCliProcess(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Exit codes:\n\s+0 {2}done\n\s+1 {2}.*\n\s+2 {2}usage error.*\n\s+3 {2}another daemon already runs.*\n\s+4 {2}no daemon is running/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
