import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/index.ts';
import { applyConfigPatch, editableConfig, EDITABLE_FIELDS } from '../../src/config/editable.ts';
import { resolveKitImportsInNode } from '@studio-worker/web-kit';

/*
 * The web UI's DOM-free modules (plain browser ES modules, no types), loaded as they are served:
 * their `/kit/…` imports resolve to the web kit, as the local API serves it.
 * The specifiers are not literals so the type checker leaves these .js files alone.
 */
resolveKitImportsInNode();
const ui = (path: string) => new URL(`../../src/ui/${path}`, import.meta.url).href;
const state: any = await import(ui('state.js'));
const fields: any = await import(ui('config-fields.js'));
const logs: any = await import(ui('views/logs.js'));

const NOW = Date.parse('2026-01-01T12:00:00Z');
const baseStatus = { paused: false, shuttingDown: false, registration: { state: 'approved' }, session: { state: 'connected' } };
const runningJob = { jobId: 'j-1', kind: 'image', model: 'z-image', status: 'running', startedAt: '2026-01-01T11:58:55Z', progress: { phase: 'generating', fraction: 0.5 } };

describe('web UI: the header says what the worker does', () => {
  it('Idle, Running <kind> · <model> · <elapsed> (+N), Paused, Stopping, Cooling down', () => {
    assert.equal(state.activityOf(baseStatus, { running: [], recent: [] }, NOW).text, 'Idle');
    assert.equal(state.activityOf(null, null, NOW).text, 'Loading…');
    const running = state.activityOf(baseStatus, { running: [runningJob], recent: [] }, NOW);
    assert.equal(running.text, 'Running image · z-image · 1:05');
    assert.equal(running.job.jobId, 'j-1');
    const waiting = { ...runningJob, jobId: 'j-2', status: 'waiting' };
    assert.equal(state.activityOf(baseStatus, { running: [runningJob, waiting], recent: [] }, NOW).text, 'Running image · z-image · 1:05 +1');
    assert.equal(state.activityOf({ ...baseStatus, paused: true }, { running: [], recent: [] }, NOW).text, 'Paused');
    assert.equal(state.activityOf({ ...baseStatus, paused: true }, { running: [runningJob], recent: [] }, NOW).text, 'Paused · finishing image · z-image · 1:05');
    assert.equal(state.activityOf({ ...baseStatus, shuttingDown: true }, { running: [], recent: [] }, NOW).text, 'Stopping');
    const cooling = { ...baseStatus, cooldown: { consecutiveFailures: 3, cooldownUntil: '2026-01-01T12:02:00Z' } };
    assert.equal(state.activityOf(cooling, { running: [], recent: [] }, NOW).text, 'Cooling down after 3 failed jobs (2:00 left)');
    const over = { ...baseStatus, cooldown: { consecutiveFailures: 3, cooldownUntil: '2026-01-01T11:00:00Z' } };
    assert.equal(state.activityOf(over, { running: [], recent: [] }, NOW).text, 'Idle', 'a cooldown in the past is over');
  });

  it('the studio state: Connected, Reconnecting (n), Awaiting approval, Registration rejected, Studio auth failed, Stopped: <reason>', () => {
    const say = (status: object) => state.studioStateOf({ ...baseStatus, ...status }).text;
    assert.equal(say({}), 'Connected');
    assert.equal(say({ session: { state: 'reconnecting', attempt: 3 } }), 'Reconnecting (3)');
    assert.equal(say({ registration: { state: 'pending', requestId: 'rr-1' }, session: { state: 'waiting_for_approval' } }), 'Awaiting approval');
    assert.equal(say({ registration: { state: 'pristine' }, session: { state: 'waiting_for_approval' } }), 'Registering');
    assert.equal(say({ registration: { state: 'rejected', reason: 'no' }, session: { state: 'waiting_for_approval' } }), 'Registration rejected');
    assert.equal(say({ session: { state: 'auth_failed', reason: '401' } }), 'Studio auth failed');
    assert.equal(say({ session: { state: 'fatal', reason: 'protocol too old' } }), 'Stopped: protocol too old');
    assert.equal(state.studioStateOf({ ...baseStatus, session: { state: 'reconnecting', attempt: 1 } }).tone, 'warn');
    assert.equal(state.studioStateOf({ ...baseStatus, session: { state: 'auth_failed', reason: 'x' } }).tone, 'bad');
  });
});

describe('web UI: the Config page checks what the daemon checks', () => {
  const known = new Map<string, any>(fields.CONFIG_GROUPS.flatMap((group: any) => group.fields.map((field: any) => [field.name, field])));
  const samples: Record<string, unknown[]> = {
    apiBaseUrl: ['https://studio.example/', 'wss://studio.example', 'http://127.0.0.1:4780/', 'ftp://studio.example/', 'not a url', '', null],
    label: [null, 'lab pc', 'x'.repeat(100), 'x'.repeat(101), 5],
    vramThresholdGb: [0, 6.5, 24, -1, -0.5, null],
    failureCooldownSecs: [0, 180, 2.5, -1, null],
    shutdownGraceSecs: [0, 5, -1, null],
    autoUpdateIntervalSecs: [60, 1800, 59, 60.5, -1, null],
    autoUpdateFeed: ['https://registry.npmjs.org/studio-worker', 'http://mirror.local/feed', 'ws://x', 'nope', ''],
    modelsRoot: ['/models', '~/models', ''],
  };

  it('every editable setting has a field, and the daemon sends no other', () => {
    const config = editableConfig(defaultConfig());
    const shown = fields.fieldsFor(config).flatMap((group: any) => group.fields.map((field: any) => field.name));
    assert.deepEqual([...shown].sort(), [...EDITABLE_FIELDS].sort());
    for (const name of EDITABLE_FIELDS) assert.ok(known.has(name), `${name} has a label and a type`);
    const extra = fields.fieldsFor({ ...config, someNewSetting: true, anotherOne: 3 });
    assert.deepEqual(extra.at(-1).fields.map((field: any) => [field.name, field.type]), [
      ['someNewSetting', 'checkbox'],
      ['anotherOne', 'number'],
    ]);
  });

  it('a value the page flags is exactly a value the daemon refuses, with the same wording', () => {
    for (const [name, values] of Object.entries(samples)) {
      const field = known.get(name);
      assert.ok(field?.check, `${name} is checked on the page`);
      for (const value of values) {
        const page = field.check(value);
        const daemon = applyConfigPatch(defaultConfig(), { [name]: value });
        assert.equal(page === undefined, daemon.ok, `${name} = ${JSON.stringify(value)}: page says ${page ?? 'ok'}, daemon says ${daemon.ok ? 'ok' : daemon.message}`);
        if (!daemon.ok) assert.equal(daemon.message, `${name} ${page}`, 'the same wording');
      }
    }
  });

  it('splits the daemon’s refusal into the fields it names', () => {
    const names = [...known.keys()];
    assert.deepEqual(fields.fieldErrorsFrom('vramThresholdGb must be a number ≥ 0; label must be a string of at most 100 characters', names), {
      byField: [
        { name: 'vramThresholdGb', message: 'vramThresholdGb must be a number ≥ 0' },
        { name: 'label', message: 'label must be a string of at most 100 characters' },
      ],
      rest: '',
    });
    const refused = fields.fieldErrorsFrom('"authToken", "workerId" cannot be changed here; editable settings: apiBaseUrl, label', names);
    assert.deepEqual(refused.byField, []);
    assert.match(refused.rest, /cannot be changed here/);
  });
});

describe('web UI: the Logs page filter', () => {
  const entries = [
    { seq: 1, level: 'info', module: 'daemon', msg: 'starting' },
    { seq: 2, level: 'warn', module: 'engine', msg: 'engine unavailable' },
    { seq: 3, level: 'error', module: 'job', msg: 'job runner crashed', jobId: 'j-9' },
    { seq: 4, level: 'info', module: 'job', msg: 'job started', jobId: 'j-9' },
  ];
  const seqs = (filter: object) => logs.visibleLogLines(entries, { level: 'info', search: '', ...filter }).map((entry: { seq: number }) => entry.seq);

  it('filters by minimum level and by text in the message, module or job id (any case)', () => {
    assert.deepEqual(seqs({}), [1, 2, 3, 4]);
    assert.deepEqual(seqs({ level: 'warn' }), [2, 3]);
    assert.deepEqual(seqs({ level: 'error' }), [3]);
    assert.deepEqual(seqs({ search: 'ENGINE' }), [2]);
    assert.deepEqual(seqs({ search: 'j-9' }), [3, 4]);
    assert.deepEqual(seqs({ search: 'j-9', level: 'warn' }), [3]);
    assert.deepEqual(seqs({ search: '  ' }), [1, 2, 3, 4]);
  });
});
