import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { EXIT_DISPLACED } from '../src/platform/exit-codes.ts';
import { DaemonProcess, readState } from './helpers/daemon-process.ts';
import { offerFrame } from './helpers/fake-studio.ts';
import { outboxEmpty, outboxFiles, useScenarios } from './helpers/scenario.ts';
import { pollUntil } from './helpers/wait.ts';

describe('daemon lifecycle (real process, fake studio)', () => {
  const scenario = useScenarios();

  it('reconnects with doubling backoff after an abnormal close; the counter resets after a welcome', async () => {
    const { studio, start } = await scenario({ timings: { reconnect_initial_ms: 40, reconnect_max_ms: 320 } });
    studio.onUpgrade = (_record, index) => (index >= 1 && index <= 4 ? { status: 503, body: { error: 'unavailable', message: 'restarting' } } : 'accept');
    const daemon = start();
    const first = await studio.ready(0);
    first.socket.terminate();
    const second = await studio.ready(1);
    assert.equal(studio.upgrades.length, 6);
    second.socket.terminate();
    await studio.ready(2);
    const reconnects = daemon.logs().filter((line) => line.op === 'reconnect');
    assert.deepEqual(
      reconnects.map((line) => line.attempt),
      [1, 2, 3, 4, 5, 1],
      'consecutive failures count up; a welcomed session starts the count again',
    );
    assert.deepEqual(
      reconnects.map((line) => line.delayMs),
      [40, 80, 160, 320, 320, 40],
    );
    // The fake studio saw the waits between refused upgrades (a lower bound: timers never fire early).
    for (let i = 1; i <= 4; i++) {
      const gap = studio.upgrades[i + 1]!.at - studio.upgrades[i]!.at;
      const expected = [80, 160, 320, 320][i - 1]!;
      assert.ok(gap >= expected - 5, `gap before upgrade ${i + 1} was ${Math.round(gap)} ms, expected ≥ ${expected}`);
    }
    assert.equal((await daemon.stop()).code, 0);
  });

  it('error{duplicate_worker} + close 4003 stops for good: zero further connection attempts, the process exits with EXIT_DISPLACED', async () => {
    const { studio, start, config } = await scenario({ timings: { reconnect_initial_ms: 10 } });
    const configDir = config.dir;
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send({ type: 'error', code: 'duplicate_worker', message: 'a newer session took over' });
    connection.close(4003, 'duplicate worker');
    const line = await daemon.waitForLog((l) => l.level === 'error' && l.op === 'session', 'the fatal log line');
    assert.match(line.msg, /same worker id/);
    assert.match(line.msg, /Stop the other one/);
    const exit = await daemon.exited(10_000);
    assert.equal(exit.code, EXIT_DISPLACED, 'its own exit code, so services and PM2 leave it stopped');
    assert.equal(studio.upgrades.length, 1, 'no reconnect fight');
    const state = await readState(configDir);
    assert.equal(state.session.state, 'fatal', 'state.json says why it stopped');
    assert.match(state.session.reason, /same worker id/);
    assert.ok(!existsSync(join(configDir, 'daemon.lock')), 'the lock is released');
  });

  it('under launchd (which restarts every non-zero exit) a displaced daemon exits 0, so KeepAlive leaves it stopped', async () => {
    const { studio, start } = await scenario({ timings: { reconnect_initial_ms: 10 } });
    const daemon = start({ env: { STUDIO_WORKER_SUPERVISED: 'launchd' } });
    const connection = await studio.ready(0);
    connection.close(4003, 'duplicate worker');
    assert.equal((await daemon.exited(10_000)).code, 0);
    assert.equal(studio.upgrades.length, 1);
  });

  it('a bare close 4004 (worker deleted) stops for good and says how to register again', async () => {
    const { studio, start } = await scenario({ timings: { reconnect_initial_ms: 10 } });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.close(4004, 'deleted');
    const state = await daemon.waitForState((s) => s.session.state === 'fatal', 'the fatal state');
    assert.match(state.session.reason, /deleted in the studio/);
    assert.match(state.session.reason, /studio-worker register --reset/);
    assert.equal((await daemon.stop()).code, 0);
    assert.equal(studio.upgrades.length, 1);
  });

  it('gives up after ws_reconnect_attempts consecutive failures when a cap is set', async () => {
    const { studio, start } = await scenario({ extra: 'ws_reconnect_attempts = 2', timings: { reconnect_initial_ms: 10, reconnect_max_ms: 20 } });
    studio.onUpgrade = (_record, index) => (index === 0 ? 'accept' : { status: 503, body: {} });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.socket.terminate();
    const state = await daemon.waitForState((s) => s.session.state === 'fatal', 'the fatal state');
    assert.match(state.session.reason, /gave up after 2 reconnect attempts/);
    assert.equal((await daemon.stop()).code, 0);
    assert.equal(studio.upgrades.length, 3);
  });

  it('treats a silent studio as dead after the read-idle timeout and reconnects', async () => {
    const { studio, start } = await scenario({ timings: { read_idle_timeout_ms: 400 } });
    studio.autoHeartbeatAck = false;
    const daemon = start();
    await studio.ready(0);
    await studio.ready(1);
    const line = await daemon.waitForLog((l) => /no frames from the studio for 400 ms/.test(l.msg), 'the idle timeout');
    assert.equal(line.level, 'warn');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a JSON result made while disconnected is re-sent after the reconnect and removed after completeAck', async () => {
    const { studio, start } = await scenario();
    studio.autoAck = false;
    let allowReconnect = false;
    studio.onUpgrade = (_record, index) => (index === 0 || allowReconnect ? 'accept' : { status: 503, body: {} });
    const daemon = start();
    const first = await studio.ready(0);
    first.send(offerFrame({ jobId: 'offline-1', attempt: 2, delayMs: 1500 }));
    await first.jobFrame('accept', 'offline-1');
    first.socket.terminate();
    await daemon.waitForLog((l) => l.op === 'job' && l.jobId === 'offline-1' && l.msg === 'job finished', 'the job to finish offline');
    await daemon.waitForState((s) => s.outboxEntries === 1 && s.session.state === 'reconnecting', 'the result in the outbox while disconnected');
    assert.equal(first.frames.filter((f) => f.type === 'completeJson').length, 0);

    allowReconnect = true;
    const second = await studio.connection(1);
    const hello = await second.frame((f) => f.type === 'hello', 'hello');
    assert.deepEqual(hello.inFlight, [{ jobId: 'offline-1', attempt: 2, state: 'finished' }]);
    const resent = await second.jobFrame('completeJson', 'offline-1');
    assert.equal(resent.attempt, 2);
    assert.equal(resent.result.object, 'chat.completion');
    assert.equal((await outboxFiles(daemon.dir)).length, 1, 'kept until acknowledged');
    second.send({ type: 'completeAck', jobId: 'offline-1', attempt: 2 });
    await outboxEmpty(daemon.dir);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a result in the outbox survives kill -9; the restarted daemon takes over the stale lock and re-sends it', async () => {
    const { studio, config, start } = await scenario();
    studio.autoAck = false;
    const daemon = start();
    const first = await studio.ready(0);
    first.send(offerFrame({ jobId: 'crash-1', attempt: 1 }));
    await first.jobFrame('completeJson', 'crash-1');
    daemon.child.kill('SIGKILL');
    const exit = await daemon.exited();
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal((await outboxFiles(config.dir)).length, 1);
    assert.equal((await readFile(join(config.dir, 'daemon.lock'), 'utf8')).trim(), String(daemon.pid), 'the dead daemon left its lock');

    const restarted = start();
    const second = await studio.connection(1);
    const hello = await second.frame((f) => f.type === 'hello', 'hello');
    assert.deepEqual(hello.inFlight, [{ jobId: 'crash-1', attempt: 1, state: 'finished' }]);
    const resent = await second.jobFrame('completeJson', 'crash-1');
    assert.equal(resent.attempt, 1);
    second.send({ type: 'completeAck', jobId: 'crash-1', attempt: 1 });
    await outboxEmpty(config.dir);
    assert.equal((await restarted.stop()).code, 0);
  });

  it('a second daemon on the same config dir exits 3 at once, naming the pid that holds the lock', async () => {
    const { studio, config, start } = await scenario();
    const first = start();
    await studio.ready(0);
    const second = start();
    const exit = await second.exited();
    assert.equal(exit.code, 3);
    assert.match(second.stderr, new RegExp(`pid ${first.pid}\\b`));
    assert.ok(second.stderr.includes(config.dir), 'names the config dir');
    assert.equal(studio.upgrades.length, 1, 'the second daemon never connected');
    assert.equal(first.exitInfo, undefined);
    assert.equal((await first.stop()).code, 0);
  });

  it('SIGTERM during a slow job: offers are rejected paused, the job is handed back, the socket closes 1000, exit 0', async () => {
    const { studio, config, start } = await scenario({ extra: 'shutdown_grace_secs = 0.3' });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'slow-term', attempt: 3, delayMs: 20_000 }));
    await connection.jobFrame('accept', 'slow-term');
    daemon.child.kill('SIGTERM');
    await daemon.waitForLog((l) => l.op === 'shutdown' && /shutting down/.test(l.msg), 'the shutdown to begin');
    connection.send(offerFrame({ jobId: 'late-offer', attempt: 1 }));
    const reject = await connection.jobFrame('reject', 'late-offer');
    assert.equal(reject.code, 'paused');
    const fail = await connection.jobFrame('fail', 'slow-term');
    assert.equal(fail.code, 'handed_back');
    assert.equal(fail.retryable, true);
    assert.equal(fail.attempt, 3);
    const closed = await connection.closed();
    assert.equal(closed.code, 1000);
    const exit = await daemon.exited();
    assert.equal(exit.code, 0);
    assert.deepEqual(await outboxFiles(config.dir), [], 'the acknowledged hand-back left the outbox');
    await assert.rejects(stat(join(config.dir, 'daemon.lock')), 'the lock is released');
  });

  it('SIGINT and SIGTERM together (Ctrl-C on a process group, then a launcher forwarding it) are one graceful stop', async () => {
    const { studio, start } = await scenario({ extra: 'shutdown_grace_secs = 0.3' });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'double-signal', attempt: 1, delayMs: 20_000 }));
    await connection.jobFrame('accept', 'double-signal');
    daemon.child.kill('SIGINT');
    daemon.child.kill('SIGTERM');
    const fail = await connection.jobFrame('fail', 'double-signal');
    assert.equal(fail.code, 'handed_back');
    assert.equal((await connection.closed()).code, 1000);
    assert.equal((await daemon.exited()).code, 0);
  });

  it('a second signal well after the first exits at once, without waiting for the job', async () => {
    const { studio, config, start } = await scenario({ extra: 'shutdown_grace_secs = 60' });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'impatient', attempt: 1, delayMs: 60_000 }));
    await connection.jobFrame('accept', 'impatient');
    daemon.child.kill('SIGTERM');
    await daemon.waitForLog((l) => l.op === 'shutdown' && /waiting up to 60000 ms/.test(l.msg), 'the grace wait to begin');
    // The rule under test is about time: a repeat within 500 ms counts as the same signal.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const sentAt = performance.now();
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited();
    assert.equal(exit.code, 1);
    assert.ok(performance.now() - sentAt < 5_000, 'it did not wait for the job');
    assert.equal(connection.frames.filter((f) => f.type === 'fail').length, 0);
    await assert.rejects(stat(join(config.dir, 'daemon.lock')), 'the lock is released even so');
    // The killed job's scratch dir is left behind, and the next start clears it.
    assert.equal((await readdir(join(config.dir, 'work'))).length, 1);
    const next = start();
    await next.waitForState((s) => s.session.state === 'connected', 'the restarted daemon connected');
    assert.deepEqual(await readdir(join(config.dir, 'work')), []);
    assert.equal((await next.stop()).code, 0);
  });

  it('SIGTERM with a job that finishes within the grace period delivers the result, then closes 1000', async () => {
    const { studio, start } = await scenario();
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'quick-term', attempt: 1, delayMs: 500 }));
    await connection.jobFrame('accept', 'quick-term');
    daemon.child.kill('SIGTERM');
    const done = await connection.jobFrame('completeJson', 'quick-term');
    assert.equal(done.attempt, 1);
    const closed = await connection.closed();
    assert.equal(closed.code, 1000);
    assert.equal((await daemon.exited()).code, 0);
    assert.equal(connection.frames.filter((f) => f.type === 'fail').length, 0);
    const state = JSON.parse(await readFile(join(daemon.dir, 'state.json'), 'utf8'));
    assert.equal(state.session.state, 'stopped');
  });

  it('creates a missing config with mode 0600, and tightens a config readable by others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'studio-worker-mode-'));
    try {
      const created = join(dir, 'fresh', 'config.toml');
      const daemon = new DaemonProcess(created);
      await daemon.waitForState(() => true, 'the first state');
      assert.equal((await stat(created)).mode & 0o777, 0o600);
      assert.match(await readFile(created, 'utf8'), /api_base_url = "http:\/\/127\.0\.0\.1:4780\/"/);
      assert.equal((await daemon.stop()).code, 0);

      const loose = join(dir, 'loose.toml');
      await writeFile(loose, 'api_base_url = "http://127.0.0.1:9/"\nauth_token = "tok-SECRET-loose"\nworker_id = "w"\n[advanced]\nconnect_timeout_ms = 200\nreconnect_initial_ms = 50\n');
      await chmod(loose, 0o644);
      const second = new DaemonProcess(loose);
      const warning = await second.waitForLog((l) => /readable by other users/.test(l.msg), 'the permission warning');
      assert.equal(warning.level, 'warn');
      assert.equal((await stat(loose)).mode & 0o777, 0o600);
      assert.equal((await second.stop()).code, 0);
      assert.ok(!second.stdout.includes('tok-SECRET-loose') && !second.stderr.includes('tok-SECRET-loose'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the state.json written while running names the pid, version, session, jobs and engines (no secrets)', async () => {
    const { studio, start } = await scenario({ extra: 'shutdown_grace_secs = 0.1' });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'state-job', delayMs: 60_000 }));
    await connection.jobFrame('accept', 'state-job');
    const state = await daemon.waitForState((s) => s.currentJobIds.includes('state-job'), 'the running job in state.json');
    assert.equal(state.pid, daemon.pid);
    assert.match(state.version, /^\d+\.\d+\.\d+/);
    assert.equal(state.session.state, 'connected');
    assert.equal(state.registration.state, 'approved');
    assert.equal(state.workerId, 'w-test');
    assert.deepEqual(state.engines.map((e: { engine: string; available: boolean }) => [e.engine, e.available]), [['synthetic', true], ['sd-cpp', false]]);
    const text = await pollUntil(async () => readFile(join(daemon.dir, 'state.json'), 'utf8'), 'state.json');
    assert.ok(!text.includes('SECRET'));
    assert.equal((await daemon.stop()).code, 0);
  });
});
