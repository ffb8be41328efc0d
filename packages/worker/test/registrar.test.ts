import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import type { WorkerCapabilities } from '@studio-worker/protocol';
import { ConfigStore, defaultConfig, loadConfig } from '../src/config/index.ts';
import { Registrar, registrationPollDelayMs, type RegistrationState } from '../src/registration/index.ts';
import { FakeStudio } from './helpers/fake-studio.ts';

const capabilities: WorkerCapabilities = {
  machineName: 'box',
  username: 'me',
  agentVersion: '0.0.0',
  engine: 'multi',
  vramTotalGb: 0,
  vramThresholdGb: 0,
  autoEnabled: true,
  autoStart: true,
  supportedModels: [],
  taskKinds: [],
  supportedModelsPerKind: {},
};

describe('registrar (in-process, fake studio)', () => {
  let dir: string;
  let studio: FakeStudio;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-registrar-'));
    studio = await FakeStudio.start();
  });
  afterEach(async () => {
    await studio.close();
    await rm(dir, { recursive: true, force: true });
  });

  function registrar(extra: Partial<ReturnType<typeof defaultConfig>> = {}) {
    const path = join(dir, 'config.toml');
    const store = new ConfigStore(path, { ...defaultConfig(), apiBaseUrl: studio.url, ...extra });
    const states: RegistrationState[] = [];
    let now = Date.parse('2026-01-01T00:00:00Z');
    const registrar = new Registrar({
      store,
      userAgent: 'studio-worker/test',
      capabilities: () => capabilities,
      log: silentLogger,
      onState: (state) => states.push(state),
      now: () => new Date((now += 1000)),
    });
    return { registrar, store, states, path };
  }

  it('an already approved worker makes no HTTP call', async () => {
    const { registrar: r } = registrar({ workerId: 'w', authToken: 't' });
    assert.deepEqual(await r.tick(), { state: 'approved' });
    assert.equal(studio.registerRequests.length + studio.polls.length, 0);
  });

  it('persists install id and secret together, sends the label, and keeps `since` across polls', async () => {
    const { registrar: r, store, states, path } = registrar({ label: 'attic' });
    const first = await r.tick();
    assert.equal(first.state, 'pending');
    const saved = await loadConfig(path);
    assert.ok(saved.installId && saved.registrationSecret, 'both on disk after the first tick');
    assert.equal(saved.registrationRequestId, 'rr-1');
    assert.equal(studio.registerRequests[0]?.body.label, 'attic');
    assert.equal(studio.registerRequests[0]?.body.installId, store.current.installId);
    const second = await r.tick();
    const third = await r.tick();
    assert.deepEqual(second, first);
    assert.deepEqual(third, first, 'since is the first sighting');
    assert.equal(studio.polls.length, 2);
    assert.equal(states.length, 1, 'onState only on changes');
  });

  it('a configured pool is sent as x-studio-pool with the registration request; without one no pool header goes out', async () => {
    const pooled = registrar({ pool: 'gpu' });
    assert.equal((await pooled.registrar.tick()).state, 'pending');
    assert.equal(studio.registerRequests[0]?.pool, 'gpu');
    await rm(pooled.path);
    const plain = registrar();
    assert.equal((await plain.registrar.tick()).state, 'pending');
    assert.equal(studio.registerRequests[1]?.pool, undefined, 'an original worker sends no pool');
  });

  it('a poll error keeps the request; an approval stores the credentials and clears the request', async () => {
    studio.onPoll = (_record, index) =>
      index === 0 ? { status: 500, body: { message: 'db down' } } : { status: 200, body: { status: 'approved', workerId: 'w-9', authToken: 'tok-9' } };
    const { registrar: r, store, path } = registrar();
    await r.tick();
    const afterError = await r.tick();
    assert.equal(afterError.state, 'pending');
    assert.equal(store.current.registrationRequestId, 'rr-1');
    assert.deepEqual(await r.tick(), { state: 'approved' });
    const saved = await loadConfig(path);
    assert.equal(saved.workerId, 'w-9');
    assert.equal(saved.authToken, 'tok-9');
    assert.equal(saved.registrationRequestId, undefined);
    assert.equal(saved.registrationSecret, undefined);
    assert.ok(saved.installId);
  });

  it('a request id without its secret is dropped and asked again with a fresh secret', async () => {
    const { registrar: r, store } = registrar({ installId: 'inst-keep-99', registrationRequestId: 'rr-old' });
    await r.tick();
    assert.equal(studio.polls.length, 0, 'an unpollable request is not polled');
    assert.equal(studio.registerRequests[0]?.body.installId, 'inst-keep-99');
    assert.equal(store.current.registrationRequestId, 'rr-1');
  });

  it('untilApproved returns at once when stopped', async () => {
    const { registrar: r } = registrar({ advanced: { ...defaultConfig().advanced, registrationPollMs: 60_000 } });
    const stop = new AbortController();
    const waiting = r.untilApproved(stop.signal);
    await studio.waitFor(() => studio.registerRequests[0], 'the request');
    stop.abort();
    assert.equal(await waiting, 'stopped');
  });
});

describe('registration poll schedule', () => {
  it('polls every second for ten minutes, then doubles each minute up to registration_poll_ms', () => {
    const minute = 60_000;
    assert.equal(registrationPollDelayMs(0, 30_000), 1_000);
    assert.equal(registrationPollDelayMs(9 * minute + 59_000, 30_000), 1_000);
    assert.equal(registrationPollDelayMs(10 * minute, 30_000), 2_000);
    assert.equal(registrationPollDelayMs(11 * minute, 30_000), 4_000);
    assert.equal(registrationPollDelayMs(13 * minute, 30_000), 16_000);
    assert.equal(registrationPollDelayMs(14 * minute, 30_000), 30_000);
    assert.equal(registrationPollDelayMs(24 * 60 * minute, 30_000), 30_000);
    // A configured interval under a second (tests) is used as it is.
    assert.equal(registrationPollDelayMs(0, 40), 40);
    assert.equal(registrationPollDelayMs(60 * minute, 40), 40);
  });
});
