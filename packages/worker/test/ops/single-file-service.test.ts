import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installAutostart } from '../../src/ops/autostart.ts';
import { workerArgv } from '../../src/ops/host.ts';
import { installService, stopTimeoutFor } from '../../src/ops/service.ts';
import { recordingRunner, testHost } from './fixtures/host.ts';

/**
 * A single-file worker (`npm run build:binaries`) has no script: `currentHost()` gives it an empty
 * `bin`, and every entry that starts the worker starts the file itself.
 */
describe('a single-file worker as a service and at login', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'ops-single-file-'));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });
  const spec = { stopTimeoutSecs: stopTimeoutFor(5), logFilter: 'info' };

  it('the argv is the file and the arguments, no script', () => {
    const host = testHost(home, { node: '/opt/sw/studio-worker-linux-x64', bin: '' });
    assert.deepEqual(workerArgv(host, '/c/config.toml', ['run']), ['/opt/sw/studio-worker-linux-x64', 'run', '--config', '/c/config.toml']);
  });

  it('Linux: the systemd unit starts the file', async () => {
    const host = testHost(home, { node: '/opt/studio worker/studio-worker-linux-x64', bin: '', run: recordingRunner() });
    const config = join(home, 'l', 'config.toml');
    const result = await installService(host, config, spec);
    const unit = readFileSync(result.file, 'utf8');
    assert.ok(unit.split('\n').includes(`ExecStart="/opt/studio worker/studio-worker-linux-x64" "run" "--config" "${config}"`), unit);
  });

  it('Windows: the scheduled task runs the .exe with the arguments only', async () => {
    const host = testHost(home, { platform: 'win32', env: { USERDOMAIN: 'BOX', USERNAME: 'me' }, node: 'C:\\sw\\studio-worker-win-x64.exe', bin: '', run: recordingRunner() });
    const config = join(home, 'w', 'config.toml');
    const result = await installService(host, config, spec);
    const xml = readFileSync(result.file).subarray(2).toString('utf16le');
    assert.match(xml, /<Command>C:\\sw\\studio-worker-win-x64\.exe<\/Command>/);
    assert.ok(xml.includes(`<Arguments>&quot;run&quot; &quot;--config&quot; &quot;${config}&quot;</Arguments>`), xml);
  });

  it('Windows login entry: the Run key holds the quoted .exe and the ui arguments', async () => {
    const run = recordingRunner();
    const host = testHost(home, { platform: 'win32', env: { APPDATA: 'C:\\Users\\me\\AppData\\Roaming' }, node: 'C:\\sw\\studio-worker-win-x64.exe', bin: '', run });
    await installAutostart(host, 'C:\\c\\config.toml', {});
    const add = run.calls.find((call) => call.command === 'reg' && call.args[0] === 'add');
    assert.ok(add?.args.includes('"C:\\sw\\studio-worker-win-x64.exe" "ui" "--no-open" "--config" "C:\\c\\config.toml"'), JSON.stringify(add));
  });
});
