import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installAutostart, removeAutostart } from '../../src/ops/autostart.ts';
import { OpsError } from '../../src/ops/errors.ts';
import { desktopExecArg, systemdArg, windowsArg, windowsCommandLine } from '../../src/ops/quote.ts';
import { installService, serviceInstalled, stopTimeoutFor, uninstallService } from '../../src/ops/service.ts';
import { recordingRunner, testHost } from './fixtures/host.ts';

const argvOf = (calls: Array<{ command: string; args: string[] }>) => calls.map((call) => [call.command, ...call.args]);

describe('quoting', () => {
  it('systemd ExecStart arguments survive spaces, quotes, backslashes, % and $', () => {
    assert.equal(systemdArg('/opt/my node/bin/node'), '"/opt/my node/bin/node"');
    assert.equal(systemdArg('a"b\\c%d$e'), '"a\\"b\\\\c%%d$$e"');
  });

  it('desktop Exec arguments: the Exec quoting, then the string-value escape, and %%', () => {
    assert.equal(desktopExecArg('/home/me/my dir/x'), '"/home/me/my dir/x"');
    // `$` → `\$` (Exec rule) → `\\$` (string rule); `%` → `%%`.
    assert.equal(desktopExecArg('a$b%c'), '"a\\\\$b%%c"');
    assert.equal(desktopExecArg('q"'), '"q\\\\""');
  });

  it('Windows arguments follow the C runtime rules (CommandLineToArgvW)', () => {
    assert.equal(windowsArg('C:\\Program Files\\nodejs\\node.exe'), '"C:\\Program Files\\nodejs\\node.exe"');
    assert.equal(windowsArg('C:\\dir\\'), '"C:\\dir\\\\"');
    assert.equal(windowsArg('say "hi"'), '"say \\"hi\\""');
    assert.equal(windowsCommandLine(['a b', 'c']), '"a b" "c"');
  });

  it('a quoted systemd line starts the same argv under a real shell word splitter (sh -c as a stand-in)', async () => {
    // sh's double-quote rules match systemd's for everything but %, so feed it the unit's line with
    // %% and $$ undone: the argv that comes out must be the argv that went in.
    const argv = ['/tmp/my node', 'a"b', 'back\\slash', "it's"];
    const line = argv.map(systemdArg).join(' ').replaceAll('%%', '%').replaceAll('$$', '\\$');
    const out = await new Promise<string>((resolve) => {
      const child = spawn('sh', ['-c', `for a in ${line}; do printf '%s\\n' "$a"; done`]);
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.on('close', () => resolve(text));
    });
    assert.deepEqual(out.trimEnd().split('\n'), argv);
  });
});

describe('login autostart entry', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'ops-autostart-'));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('Linux: $XDG_CONFIG_HOME/autostart/studio-worker.desktop runs `ui --no-open` with this config; idempotent; removable', async () => {
    const host = testHost(home);
    const config = join(home, 'cfg dir', 'config.toml');
    const first = await installAutostart(host, config);
    assert.deepEqual(first, { place: join(home, '.config', 'autostart', 'studio-worker.desktop'), outcome: 'written' });
    const text = await readFile(first.place, 'utf8');
    assert.match(text, /^\[Desktop Entry\]\nType=Application\n/);
    assert.ok(text.includes(`Exec="/opt/node 24/bin/node" "/opt/studio worker/bin/studio-worker.js" "ui" "--no-open" "--config" "${config}"\n`), text);
    assert.match(text, /Terminal=false/);
    const mtime = (await stat(first.place)).mtimeMs;
    assert.deepEqual(await installAutostart(host, config), { place: first.place, outcome: 'unchanged' });
    assert.equal((await stat(first.place)).mtimeMs, mtime, 'a second setup does not rewrite the file');
    assert.equal((await installAutostart(host, config, { tray: true })).outcome, 'written');
    assert.match(await readFile(first.place, 'utf8'), /"--no-open" "--tray"/);
    assert.deepEqual(await removeAutostart(host), { place: first.place, outcome: 'removed' });
    assert.equal(existsSync(first.place), false);
    assert.deepEqual(await removeAutostart(host), { place: first.place, outcome: 'absent' });
  });

  it('macOS: ~/Library/LaunchAgents/gg.studio-worker.ui.plist, RunAtLoad, output to logs/ui.out', async () => {
    const host = testHost(home, { platform: 'darwin' });
    const config = join(home, 'Library', 'Application Support', 'studio-worker', 'config.toml');
    const result = await installAutostart(host, config);
    assert.equal(result.place, join(home, 'Library', 'LaunchAgents', 'gg.studio-worker.ui.plist'));
    const text = await readFile(result.place, 'utf8');
    assert.match(text, /<key>Label<\/key>\n {2}<string>gg\.studio-worker\.ui<\/string>/);
    assert.match(text, /<key>RunAtLoad<\/key>\n {2}<true\/>/);
    assert.ok(existsSync(join(config, '..', 'logs')), 'launchd does not create the log folder itself');
    const strings = [...text.matchAll(/<string>([^<]*)<\/string>/g)].map((m) => m[1]);
    assert.deepEqual(strings.slice(1, 7), ['/opt/node 24/bin/node', '/opt/studio worker/bin/studio-worker.js', 'ui', '--no-open', '--config', config]);
    assert.ok(strings.includes(join(home, 'Library', 'Application Support', 'studio-worker', 'logs', 'ui.out')));
    await removeAutostart(host);
    assert.equal(existsSync(result.place), false);
  });

  it('Windows: an HKCU Run value set and removed with reg.exe', async () => {
    const run = recordingRunner((call) => (call.args[0] === 'query' ? { code: 0 } : {}));
    const host = testHost(home, { platform: 'win32', node: 'C:\\Program Files\\nodejs\\node.exe', bin: 'C:\\sw\\bin\\studio-worker.js', run });
    const result = await installAutostart(host, 'C:\\Users\\me\\AppData\\Roaming\\studio-worker\\config.toml');
    assert.equal(result.place, 'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\studio-worker (registry)');
    await removeAutostart(host);
    assert.deepEqual(argvOf(run.calls), [
      [
        'reg',
        'add',
        'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run',
        '/v',
        'studio-worker',
        '/t',
        'REG_SZ',
        '/d',
        '"C:\\Program Files\\nodejs\\node.exe" "C:\\sw\\bin\\studio-worker.js" "ui" "--no-open" "--config" "C:\\Users\\me\\AppData\\Roaming\\studio-worker\\config.toml"',
        '/f',
      ],
      ['reg', 'query', 'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run', '/v', 'studio-worker'],
      ['reg', 'delete', 'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run', '/v', 'studio-worker', '/f'],
    ]);
  });
});

describe('supervised service', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'ops-service-'));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });
  const spec = { stopTimeoutSecs: stopTimeoutFor(5), logFilter: 'info' };

  it('the stop timeout stays above the shutdown grace plus the outbox flush', () => {
    assert.equal(stopTimeoutFor(5), 15);
    assert.equal(stopTimeoutFor(30), 40);
    assert.equal(stopTimeoutFor(0), 15);
  });

  it('Linux: a systemd --user unit, daemon-reload, enable --now; uninstall disables, removes, reloads', async () => {
    const run = recordingRunner();
    const host = testHost(home, { run });
    const config = join(home, 'w', 'config.toml');
    const result = await installService(host, config, spec);
    const unitPath = join(home, '.config', 'systemd', 'user', 'studio-worker.service');
    assert.equal(result.file, unitPath);
    const unit = readFileSync(unitPath, 'utf8');
    for (const line of [
      'Type=simple',
      `ExecStart="/opt/node 24/bin/node" "/opt/studio worker/bin/studio-worker.js" "run" "--config" "${config}"`,
      'Environment="STUDIO_WORKER_LOG=info"',
      'Restart=on-failure',
      'RestartSec=5',
      // 3: another daemon holds the lock; 5: displaced by a newer session with the same worker id (4003).
      'RestartPreventExitStatus=3 5',
      // An update exits 75 and systemd starts the launcher again (the successor would die with the cgroup).
      'Environment="STUDIO_WORKER_SUPERVISED=systemd"',
      'RestartForceExitStatus=75',
      'SuccessExitStatus=75',
      'KillMode=mixed',
      'TimeoutStopSec=15',
      'WantedBy=default.target',
    ]) {
      assert.ok(unit.split('\n').includes(line), `the unit has ${line}:\n${unit}`);
    }
    assert.deepEqual(argvOf(run.calls), [
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', 'studio-worker.service'],
    ]);
    assert.deepEqual(result.steps, [`written ${unitPath}`, 'ran systemctl --user daemon-reload', 'ran systemctl --user enable --now studio-worker.service']);
    assert.ok(result.next.some((line) => line === 'to keep it running while you are logged out (a headless box): loginctl enable-linger tester'));
    assert.equal(await serviceInstalled(host, config), true);

    run.calls.length = 0;
    const removed = await uninstallService(host, config);
    assert.deepEqual(argvOf(run.calls), [
      ['systemctl', '--user', 'disable', '--now', 'studio-worker.service'],
      ['systemctl', '--user', 'daemon-reload'],
    ]);
    assert.equal(existsSync(unitPath), false);
    assert.deepEqual(removed.steps, ['ran systemctl --user disable --now studio-worker.service (stopped and disabled)', `removed ${unitPath}`, 'ran systemctl --user daemon-reload']);
    assert.equal(await serviceInstalled(host, config), false);
  });

  it('Linux without systemctl: the unit is written and the message says what to run by hand', async () => {
    const host = testHost(home, { run: recordingRunner(() => ({ code: null, missing: true })) });
    const error = await installService(host, join(home, 'w', 'config.toml'), spec).catch((caught: unknown) => caught);
    assert.ok(error instanceof OpsError);
    assert.equal(error.code, 'command_missing');
    assert.match(error.message, /systemctl is not available here/);
    assert.match(error.message, /systemctl --user daemon-reload && systemctl --user enable --now studio-worker\.service/);
    assert.match(error.message, /use `studio-worker setup` \(login autostart\) or PM2 instead/);
    await uninstallService(host, join(home, 'w', 'config.toml'));
  });

  it('Linux with a failing systemctl (no user bus): its words, what was done, and how to retry', async () => {
    const host = testHost(home, {
      run: recordingRunner((call) => (call.args.includes('enable') ? { code: 1, stderr: 'Failed to connect to bus: No medium found' } : {})),
    });
    const error = await installService(host, join(home, 'w', 'config.toml'), spec).catch((caught: unknown) => caught);
    assert.ok(error instanceof OpsError);
    assert.equal(error.code, 'command_failed');
    assert.match(error.message, /systemctl --user enable --now studio-worker\.service failed \(exit code 1\): Failed to connect to bus/);
    assert.match(error.message, /Done so far: written .*studio-worker\.service; ran systemctl --user daemon-reload/);
    assert.match(error.message, /run `studio-worker install-service` again/);
    await uninstallService(testHost(home), join(home, 'w', 'config.toml'));
  });

  it('macOS: a LaunchAgent that restarts only after a failure, loaded with launchctl bootstrap', async () => {
    const run = recordingRunner((call) => (call.args[0] === 'bootout' ? { code: 3, stderr: 'No such process' } : {}));
    const host = testHost(home, { platform: 'darwin', run });
    const config = join(home, 'mac', 'config.toml');
    const result = await installService(host, config, spec);
    assert.equal(result.file, join(home, 'Library', 'LaunchAgents', 'gg.studio-worker.plist'));
    const text = readFileSync(result.file, 'utf8');
    assert.match(text, /<key>KeepAlive<\/key>\n {2}<dict>\n {4}<key>SuccessfulExit<\/key>\n {4}<false\/>\n {2}<\/dict>/);
    assert.match(text, /<key>RunAtLoad<\/key>\n {2}<true\/>/);
    assert.match(text, /<key>ExitTimeOut<\/key>\n {2}<integer>15<\/integer>/);
    assert.match(text, /<key>STUDIO_WORKER_LOG<\/key>\n {4}<string>info<\/string>/);
    // An update exits 75 (not a successful exit), so KeepAlive starts the launcher again.
    assert.match(text, /<key>STUDIO_WORKER_SUPERVISED<\/key>\n {4}<string>launchd<\/string>/);
    assert.ok(existsSync(join(home, 'mac', 'logs')), 'launchd does not create the log folder itself');
    assert.deepEqual(argvOf(run.calls), [
      ['launchctl', 'bootout', 'gui/501/gg.studio-worker'],
      ['launchctl', 'bootstrap', 'gui/501', result.file],
    ]);
    run.calls.length = 0;
    await uninstallService(testHost(home, { platform: 'darwin', run: recordingRunner() }), config);
    assert.equal(existsSync(result.file), false);
  });

  it('Windows: Task Scheduler XML in UTF-16 (logon trigger, restart on failure), schtasks /Create /XML then /Run', async () => {
    const run = recordingRunner();
    const host = testHost(home, {
      platform: 'win32',
      env: { USERDOMAIN: 'BOX', USERNAME: 'me' },
      node: 'C:\\Program Files\\nodejs\\node.exe',
      bin: 'C:\\sw\\bin\\studio-worker.js',
      run,
    });
    const config = join(home, 'win', 'config.toml');
    const result = await installService(host, config, spec);
    assert.equal(result.file, join(home, 'win', 'studio-worker.task.xml'));
    const raw = readFileSync(result.file);
    assert.deepEqual([...raw.subarray(0, 2)], [0xff, 0xfe], 'UTF-16LE byte-order mark');
    const xml = raw.subarray(2).toString('utf16le');
    assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-16"\?>/);
    assert.match(xml, /<LogonTrigger>\r\n\s*<Enabled>true<\/Enabled>\r\n\s*<UserId>BOX\\me<\/UserId>/);
    assert.match(xml, /<RestartOnFailure>\r\n\s*<Interval>PT1M<\/Interval>\r\n\s*<Count>10<\/Count>/);
    assert.match(xml, /<Command>C:\\Program Files\\nodejs\\node\.exe<\/Command>/);
    assert.ok(xml.includes(`<Arguments>&quot;C:\\sw\\bin\\studio-worker.js&quot; &quot;run&quot; &quot;--config&quot; &quot;${config}&quot;</Arguments>`), xml);
    assert.deepEqual(argvOf(run.calls), [
      ['schtasks', '/Create', '/TN', 'StudioWorker', '/XML', result.file, '/F'],
      ['schtasks', '/Run', '/TN', 'StudioWorker'],
    ]);
    run.calls.length = 0;
    await uninstallService(host, config);
    assert.deepEqual(argvOf(run.calls), [
      ['schtasks', '/End', '/TN', 'StudioWorker'],
      ['schtasks', '/Delete', '/TN', 'StudioWorker', '/F'],
    ]);
    assert.equal(existsSync(result.file), false);
  });
});
