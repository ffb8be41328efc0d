import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { afterEach, describe, it } from 'node:test';
import { parseConfigText } from '../src/config/index.ts';
import { hashRegistrationSecret } from '../src/registration/index.ts';
import { DaemonProcess, makeConfig, runCliProcess, TEST_AUTH_TOKEN, type TestConfig } from './helpers/daemon-process.ts';
import { FakeStudio } from './helpers/fake-studio.ts';

async function readConfigFile(path: string) {
  return parseConfigText(await readFile(path, 'utf8'));
}

describe('daemon registration (real process, fake studio)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function setup(options: { approved?: boolean; extra?: string; timings?: Record<string, number> } = {}) {
    const studio = await FakeStudio.start();
    cleanups.push(() => studio.close());
    const config: TestConfig = await makeConfig(studio.url, { approved: options.approved ?? false, extra: options.extra, timings: options.timings });
    cleanups.push(() => config.cleanup());
    const start = () => {
      const daemon = new DaemonProcess(config.configPath);
      cleanups.push(() => {
        if (!daemon.exitInfo) daemon.child.kill('SIGKILL');
      });
      return daemon;
    };
    return { studio, config, start };
  }

  it('goes pending → approved → connects with the issued token', async () => {
    const { studio, config, start } = await setup();
    studio.onRegisterRequest = () => ({ status: 200, body: { requestId: 'rr-approve', status: 'pending' } });
    studio.onPoll = (_record, index) =>
      index < 2 ? { status: 200, body: { status: 'pending' } } : { status: 200, body: { status: 'approved', workerId: 'w-approved', authToken: 'tok-SECRET-issued' } };
    const daemon = start();

    const pending = await daemon.waitForState((state) => state.registration.state === 'pending', 'registration pending');
    assert.equal(pending.registration.requestId, 'rr-approve');
    assert.equal(pending.session.state, 'waiting_for_approval');
    const request = studio.registerRequests[0]?.body;
    assert.match(request.installId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(request.registrationSecretHash, /^[0-9a-f]{64}$/);
    assert.match(request.userAgent, /^studio-worker\/\d+\.\d+\.\d+/);
    assert.ok(request.capabilities.taskKinds.includes('image'), 'the synthetic engine is advertised');
    const poll = await studio.waitFor(() => studio.polls[0], 'a poll');
    assert.equal(poll.requestId, 'rr-approve');
    const secret = poll.authorization?.replace(/^Bearer /, '') ?? '';
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.equal(hashRegistrationSecret(secret), request.registrationSecretHash, 'the poll bearer is the secret whose hash was sent');

    const connection = await studio.connection(0);
    assert.equal(connection.workerId, 'w-approved');
    assert.equal(connection.upgrade.authorization, 'Bearer tok-SECRET-issued');
    assert.equal(connection.upgrade.protocols, 'studio-worker-v1');
    const hello = await connection.frame((frame) => frame.type === 'hello', 'hello');
    assert.equal(hello.authToken, 'tok-SECRET-issued');
    await daemon.waitForState((state) => state.session.state === 'connected' && state.registration.state === 'approved', 'connected');

    const saved = await readConfigFile(config.configPath);
    assert.equal(saved.workerId, 'w-approved');
    assert.equal(saved.authToken, 'tok-SECRET-issued');
    assert.equal(saved.registrationRequestId, undefined);
    assert.equal(saved.registrationSecret, undefined);
    assert.equal(saved.installId, request.installId);
    assert.equal((await stat(config.configPath)).mode & 0o777, 0o600);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('with the default poll interval (30 s), an approval reaches the waiting worker within 2 s', async () => {
    const { studio, start } = await setup({ timings: { registration_poll_ms: 30_000 } });
    let approvedAt: number | undefined;
    studio.onRegisterRequest = () => ({ status: 200, body: { requestId: 'rr-fast', status: 'pending' } });
    studio.onPoll = () =>
      approvedAt === undefined ? { status: 200, body: { status: 'pending' } } : { status: 200, body: { status: 'approved', workerId: 'w-fast', authToken: 'tok-SECRET-fast' } };
    const daemon = start();
    await studio.waitFor(() => studio.polls[1], 'two polls (the worker polls while it waits)', 10_000);
    approvedAt = performance.now();
    await studio.connection(0);
    const tookMs = performance.now() - approvedAt;
    assert.ok(tookMs < 2_000, `the approval took ${Math.round(tookMs)} ms to reach the worker`);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a rejection is logged with the fix and sends no more requests', async () => {
    const { studio, config, start } = await setup();
    studio.onPoll = () => ({ status: 200, body: { status: 'rejected', reason: 'unknown machine' } });
    const daemon = start();
    const state = await daemon.waitForState((s) => s.registration.state === 'rejected', 'rejected');
    assert.equal(state.registration.reason, 'unknown machine');
    const line = await daemon.waitForLog((l) => l.level === 'error' && l.op === 'registration', 'the rejection');
    assert.match(line.msg, /unknown machine/);
    // The fix as typed here (a checkout), with this daemon's config: it runs as printed.
    assert.ok(line.msg.includes(`run \`npm run worker -- register --reset --config ${config.configPath}\``), line.msg);
    const status = await runCliProcess(['status', '--config', config.configPath]);
    assert.ok(status.stdout.includes(`run \`npm run worker -- register --reset --config ${config.configPath}\` and restart`), status.stdout);
    // The process stays up (a supervisor would only restart the request loop otherwise).
    assert.equal(daemon.exitInfo, undefined);
    const exit = await daemon.stop();
    assert.equal(exit.code, 0);
    assert.equal(studio.registerRequests.length, 1, 'exactly one registration request');
    assert.equal(studio.polls.length, 1, 'no polling after the rejection');
    assert.equal(studio.upgrades.length, 0);
    const saved = await readConfigFile(config.configPath);
    assert.equal(saved.registrationRequestId, undefined);
    assert.equal(saved.registrationSecret, undefined);
    assert.ok(saved.installId);
  });

  for (const status of [404, 401]) {
    it(`a ${status} poll means a stale request: a new request with the same install id`, async () => {
      const { studio, start } = await setup();
      studio.onPoll = (_record, index) => (index === 0 ? { status, body: { error: 'gone', message: 'no such request' } } : { status: 200, body: { status: 'pending' } });
      const daemon = start();
      await studio.waitFor(() => studio.registerRequests[1], 'a second registration request');
      const [first, second] = studio.registerRequests.map((r) => r.body);
      assert.equal(second.installId, first.installId);
      assert.notEqual(second.registrationSecretHash, first.registrationSecretHash, 'a fresh secret');
      await daemon.waitForState((s) => s.registration.state === 'pending' && s.registration.requestId === 'rr-2', 'pending on the new request');
      await studio.waitFor(() => studio.polls.find((p) => p.requestId === 'rr-2'), 'a poll of the new request');
      assert.equal((await daemon.stop()).code, 0);
    });
  }

  it('a failed registration request is retried', async () => {
    const { studio, start } = await setup();
    studio.onRegisterRequest = (_body, index) =>
      index === 0 ? { status: 503, body: { error: 'busy', message: 'try later' } } : { status: 200, body: { requestId: 'rr-ok', status: 'pending' } };
    const daemon = start();
    const warning = await daemon.waitForLog((l) => l.op === 'registration' && l.level === 'warn', 'the failure');
    assert.match(warning.msg, /503/);
    assert.match(warning.msg, /try later/);
    await daemon.waitForState((s) => s.registration.state === 'pending' && s.registration.requestId === 'rr-ok', 'pending after the retry');
    assert.equal(studio.registerRequests[0]?.body.installId, studio.registerRequests[1]?.body.installId);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('close 4001 clears the credentials (keeping the install id) and registers again', async () => {
    const { studio, config, start } = await setup({ approved: true, extra: 'install_id = "inst-keep-0001"' });
    const daemon = start();
    const connection = await studio.connection(0);
    await connection.frame((f) => f.type === 'heartbeat', 'a heartbeat');
    connection.close(4001, 'token revoked');
    const request = await studio.waitFor(() => studio.registerRequests[0], 'a new registration request');
    assert.equal(request.body.installId, 'inst-keep-0001');
    assert.equal(studio.upgrades.length, 1, 'no reconnect with the refused token');
    const line = await daemon.waitForLog((l) => l.level === 'error' && /refused this worker's token/.test(l.msg), 'the auth failure');
    assert.match(line.msg, /registration request/);
    await daemon.waitForState((s) => s.session.state === 'waiting_for_approval' && s.registration.state === 'pending', 'waiting for approval again');
    const saved = await readConfigFile(config.configPath);
    assert.equal(saved.workerId, undefined);
    assert.equal(saved.authToken, undefined);
    assert.equal(saved.installId, 'inst-keep-0001');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a 401 on the upgrade also sends the worker back to registration, with the body logged', async () => {
    const { studio, start } = await setup({ approved: true });
    studio.onUpgrade = () => ({ status: 401, body: { error: 'auth_failed', message: 'unknown worker token' } });
    const daemon = start();
    await studio.waitFor(() => studio.registerRequests[0], 'a registration request');
    assert.equal(studio.upgrades.length, 1);
    assert.equal(studio.upgrades[0]?.authorization, `Bearer ${TEST_AUTH_TOKEN}`);
    const line = await daemon.waitForLog((l) => l.level === 'error' && /refused this worker's token/.test(l.msg), 'the auth failure');
    assert.match(line.msg, /unknown worker token/);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('`register --reset` clears the registration, keeps the rest, and says what to do next', async () => {
    const { config } = await setup({
      approved: true,
      extra: ['install_id = "inst-0000-reset"', 'registration_request_id = "rr-9"', 'registration_secret = "SECRET-reg"', 'vram_threshold_gb_unknown = 3'].join('\n'),
    });
    const result = await runCliProcess(['register', '--reset', '--label', 'attic box', '--api-base-url', 'https://studio.example/', '--config', config.configPath]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /registration reset/);
    assert.ok(result.stdout.includes(`next: npm run worker -- run --config ${config.configPath}  (it sends a registration request`), result.stdout);
    const saved = await readConfigFile(config.configPath);
    for (const field of ['workerId', 'authToken', 'installId', 'registrationRequestId', 'registrationSecret'] as const) assert.equal(saved[field], undefined, field);
    assert.equal(saved.label, 'attic box');
    assert.equal(saved.apiBaseUrl, 'https://studio.example/');
    assert.equal(saved.vramThresholdGb, 8, 'other settings survive');
    assert.equal((await stat(config.configPath)).mode & 0o777, 0o600);
    assert.ok(!result.stdout.includes('SECRET') && !result.stderr.includes('SECRET'));
  });

  it('`register` refuses a bad URL with exit code 2 and changes nothing', async () => {
    const { config } = await setup({ approved: true });
    const before = await readFile(config.configPath, 'utf8');
    const result = await runCliProcess(['register', '--api-base-url', 'ftp://studio.example/', '--config', config.configPath]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /must use http, https, ws or wss/);
    assert.equal(await readFile(config.configPath, 'utf8'), before);
  });
});
