import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigError,
  defaultConfig,
  defaultConfigPath,
  defaultModelsRoot,
  loadConfig,
  parseConfigText,
  readConfig,
  renderConfigToml,
  saveConfig,
} from '../src/config/index.ts';
import * as publicApi from '../src/index.ts';

describe('config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has the documented defaults', () => {
    const config = defaultConfig();
    assert.equal(config.apiBaseUrl, 'http://127.0.0.1:4780/');
    assert.equal(config.vramThresholdGb, 12);
    assert.equal(config.autoStart, true);
    assert.equal(config.startMinimised, true);
    assert.equal(config.autoUpdateEnabled, true);
    assert.equal(config.autoUpdateIntervalSecs, 1800);
    assert.equal(config.autoUpdateFeed, 'https://registry.npmjs.org/studio-worker');
    assert.equal(config.autoUpdatePrerelease, false);
    assert.equal(config.wsReconnectAttempts, 0);
    assert.equal(config.localApiPort, 4787);
    assert.equal(config.onlyWhenIdle, false);
    assert.equal(config.idleAfterSecs, 120);
    assert.equal(config.pauseWhenGpuBusy, false);
    assert.equal(config.prefetch, true);
    assert.equal(config.failureCooldownSecs, 180);
    assert.equal(config.shutdownGraceSecs, 5);
    assert.deepEqual(config.engines, { synthetic: { enabled: true } });
    assert.deepEqual(config.advanced, {
      heartbeatIntervalMs: 5000,
      readIdleTimeoutMs: 20000,
      connectTimeoutMs: 15000,
      reconnectInitialMs: 1000,
      reconnectMaxMs: 30000,
      registrationPollMs: 30000,
      logFlushMs: 1000,
      uploadRetryBaseMs: 1000,
      uploadGiveUpMs: 600000,
      presenceSampleMs: 5000,
    });
    for (const field of ['workerId', 'authToken', 'installId', 'registrationRequestId', 'registrationSecret', 'label', 'pool', 'localApiToken'] as const) {
      assert.equal(config[field], undefined, field);
    }
  });

  it('reads snake_case TOML into camelCase, expanding ~/ in models_root', () => {
    const config = parseConfigText(
      [
        'api_base_url = "https://studio.example/"',
        'worker_id = "w-1"',
        'vram_threshold_gb = 7.5',
        'models_root = "~/models"',
        'ws_reconnect_attempts = 3',
        'prefetch = false',
        'failure_cooldown_secs = 0.5',
        '[engines.synthetic]',
        'enabled = false',
        '[advanced]',
        'heartbeat_interval_ms = 50',
      ].join('\n'),
    );
    assert.equal(config.prefetch, false);
    assert.equal(config.failureCooldownSecs, 0.5);
    assert.equal(config.apiBaseUrl, 'https://studio.example/');
    assert.equal(config.workerId, 'w-1');
    assert.equal(config.vramThresholdGb, 7.5);
    assert.ok(!config.modelsRoot.startsWith('~') && config.modelsRoot.endsWith('models'));
    assert.equal(config.wsReconnectAttempts, 3);
    assert.equal(config.engines.synthetic.enabled, false);
    assert.equal(config.advanced.heartbeatIntervalMs, 50);
    assert.equal(config.advanced.readIdleTimeoutMs, 20000);
  });

  it('names the field and what is allowed when a value is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['vram_threshold_gb = -1', /^config\.toml: vram_threshold_gb must be a number ≥ 0$/],
      ['api_base_url = "ftp://x"', /api_base_url must be an http, https, ws or wss URL/],
      ['auto_start = "yes"', /auto_start must be true or false/],
      ['local_api_port = 70000', /local_api_port must be a whole number from 0 to 65535/],
      ['ws_reconnect_attempts = 1.5', /ws_reconnect_attempts must be a whole number ≥ 0/],
      ['[advanced]\nheartbeat_interval_ms = 0', /advanced\.heartbeat_interval_ms must be a whole number of milliseconds ≥ 1/],
      ['auto_update_feed = "file:///etc/passwd"', /auto_update_feed must be an http or https URL/],
      ['failure_cooldown_secs = -1', /failure_cooldown_secs must be a number of seconds ≥ 0 \(0 = never pause after failed jobs\)/],
      ['prefetch = 1', /prefetch must be true or false/],
      ['pool = "GPU box"', /pool must be 1 to 32 lowercase letters, digits or "-"/],
    ];
    for (const [text, pattern] of cases) {
      assert.throws(
        () => parseConfigText(text),
        (error: unknown) => error instanceof ConfigError && error.code === 'config_invalid' && pattern.test(error.message),
        text,
      );
    }
  });

  it('reports a TOML syntax error by position only, never quoting the file', () => {
    assert.throws(
      () => parseConfigText('worker_id = "w"\nauth_token = "tok-SECRET-abc\n'),
      (error: unknown) =>
        error instanceof ConfigError && error.code === 'config_syntax' && /line 2, column \d+/.test(error.message) && !error.message.includes('SECRET') && !error.message.includes('auth_token'),
    );
  });

  it('warns about unknown keys by name, never by value, and ignores them', () => {
    const warnings: string[] = [];
    const config = parseConfigText('mystery_key = "SECRET-value"\nworker_id = "w"\n[advanced]\nturbo = 9\n[engines.synthetic]\nsparkle = true\n', warnings);
    assert.deepEqual(warnings, [
      'config.toml: unknown key "mystery_key" ignored',
      'config.toml: unknown key "advanced.turbo" ignored',
      'config.toml: unknown key "engines.synthetic.sparkle" ignored',
    ]);
    assert.ok(!('mysteryKey' in config));
  });

  it("keeps other engines' tables through a save", async () => {
    const path = join(dir, 'engines.toml');
    const config = parseConfigText('[engines.sd-cpp]\nsd_cli_path = "/opt/sd-cli"\n');
    await saveConfig(path, config);
    const text = await readFile(path, 'utf8');
    assert.match(text, /\[engines\.sd-cpp\]\nsd_cli_path = "\/opt\/sd-cli"/);
    assert.deepEqual((await loadConfig(path)).engines['sd-cpp'], { sdCliPath: '/opt/sd-cli' });
  });

  it('reads a pool name (the protocol\'s POOL_NAME)', () => {
    assert.equal(parseConfigText('pool = "gpu-2"\n').pool, 'gpu-2');
    assert.equal(parseConfigText('pool = ""\n').pool, undefined, 'empty means no pool');
  });

  it('treats an empty string as "not set" for optional text fields', () => {
    const config = parseConfigText('worker_id = ""\nauth_token = ""\n');
    assert.equal(config.workerId, undefined);
    assert.equal(config.authToken, undefined);
  });

  it('a missing file reads as the defaults', async () => {
    const result = await readConfig(join(dir, 'nope', 'config.toml'));
    assert.equal(result.exists, false);
    assert.deepEqual(result.config, defaultConfig());
  });

  it('saves atomically with mode 0600 and round-trips', async () => {
    const path = join(dir, 'sub', 'config.toml');
    const config = { ...defaultConfig(), workerId: 'w-9', authToken: 'tok', label: 'box', vramThresholdGb: 6.5 };
    await saveConfig(path, config);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700);
    assert.deepEqual(await loadConfig(path), config);
    await saveConfig(path, { ...config, label: 'renamed' });
    assert.deepEqual(await readdir(join(dir, 'sub')), ['config.toml'], 'no temp files left behind');
    assert.equal((await loadConfig(path)).label, 'renamed');
  });

  it('refuses to save an invalid config, leaving the file alone', async () => {
    const path = join(dir, 'guard.toml');
    await saveConfig(path, defaultConfig());
    const before = await readFile(path, 'utf8');
    await assert.rejects(saveConfig(path, { ...defaultConfig(), vramThresholdGb: -3 }), /vram_threshold_gb must be a number ≥ 0/);
    assert.equal(await readFile(path, 'utf8'), before);
  });

  it('tightens a config file that others can read to 0600, with a warning that names no value', async () => {
    const path = join(dir, 'loose.toml');
    await writeFile(path, 'auth_token = "tok-SECRET"\n');
    await chmod(path, 0o644);
    const result = await readConfig(path);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0] ?? '', /readable by other users/);
    assert.ok(!result.warnings[0]?.includes('SECRET'));
  });

  it('masks credentials when rendering for display', () => {
    const text = renderConfigToml({ ...defaultConfig(), authToken: 'tok-SECRET', registrationSecret: 'SECRET', localApiToken: 'SECRET', workerId: 'w-1' }, { maskSecrets: true });
    assert.ok(!text.includes('SECRET'));
    assert.match(text, /auth_token = "…\(set\)"/);
    assert.match(text, /worker_id = "w-1"/);
    assert.doesNotMatch(renderConfigToml(defaultConfig(), { maskSecrets: true }), /auth_token/, 'unset secrets are not shown at all');
  });

  it('finds the config dir: XDG first, then the platform default', () => {
    assert.equal(defaultConfigPath({ XDG_CONFIG_HOME: '/x' }, 'linux', '/home/u'), '/x/studio-worker/config.toml');
    assert.equal(defaultConfigPath({}, 'linux', '/home/u'), '/home/u/.config/studio-worker/config.toml');
    assert.equal(defaultConfigPath({}, 'darwin', '/Users/u'), '/Users/u/Library/Application Support/studio-worker/config.toml');
    assert.equal(defaultConfigPath({ APPDATA: '/appdata' }, 'win32', '/home/u'), join('/appdata', 'studio-worker', 'config.toml'));
    assert.equal(defaultModelsRoot({ XDG_DATA_HOME: '/d' }, '/home/u'), '/d/studio-worker/models');
    assert.equal(defaultModelsRoot({}, '/home/u'), '/home/u/.local/share/studio-worker/models');
  });

  it('the package exports what the launcher needs', async () => {
    assert.equal(typeof publicApi.loadConfig, 'function');
    assert.equal(typeof publicApi.saveConfig, 'function');
    assert.equal(typeof publicApi.defaultConfigPath, 'function');
    const path = join(dir, 'launcher', 'config.toml');
    const config: publicApi.WorkerConfig = { ...(await publicApi.loadConfig(path)), apiBaseUrl: 'http://127.0.0.1:4780/', workerId: 'w-local', authToken: 'tok-local' };
    await publicApi.saveConfig(path, config);
    const loaded = await publicApi.loadConfig(path);
    assert.equal(loaded.workerId, 'w-local');
    assert.equal(loaded.authToken, 'tok-local');
  });
});
