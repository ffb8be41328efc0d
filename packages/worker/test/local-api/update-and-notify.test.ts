// The daemon's wiring of two opt-in conveniences: "Check for updates" (POST /daemon/update/check)
// against a local fake feed, and desktop notifications when a studio job ends.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DaemonProcess, makeConfig } from '../helpers/daemon-process.ts';
import { FakeStudio, offerFrame } from '../helpers/fake-studio.ts';
import { pollUntil } from '../helpers/wait.ts';
import { FakeFeed } from '../update/helpers/fake-feed.ts';
import { tarGz } from '../update/helpers/tarball.ts';
import { Api } from './harness.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function daemonWith(extra: string) {
  const studio = await FakeStudio.start();
  cleanups.push(() => studio.close());
  const config = await makeConfig(studio.url, { extra });
  cleanups.push(() => config.cleanup());
  const daemon = new DaemonProcess(config.configPath);
  cleanups.push(() => !daemon.exitInfo && daemon.child.kill('SIGKILL'));
  return { studio, config, daemon };
}

describe('check for updates from the local API', () => {
  it('from a git checkout: answers "update with git" and asks no feed (what the feed offers says nothing about a checkout)', async () => {
    const feed = await FakeFeed.start();
    cleanups.push(() => feed.close());
    const package_ = (version: string) => tarGz([{ name: 'package/package.json', data: JSON.stringify({ name: 'studio-worker', version }) }]);
    feed.npm([{ version: '0.1.0', tarball: package_('0.1.0') }, { version: '9.9.0', tarball: package_('9.9.0') }], { latest: '9.9.0' });
    const { daemon } = await daemonWith(`auto_update_feed = "${feed.url('/studio-worker')}"`);
    const api = await Api.of(daemon);
    const answer = await api.call('POST', '/daemon/update/check');
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.available, false);
    assert.equal(typeof answer.json.gitCheckout, 'string');
    assert.match(answer.json.current, /^\d+\.\d+\.\d+/);
    assert.deepEqual(answer.json.notes, ['git checkout: update with git (git pull, then npm install)']);
    assert.deepEqual(feed.requests, [], 'the feed is not asked');
    // The status page has the machine facts the UI shows.
    const status = await api.call('GET', '/daemon/status');
    assert.equal(typeof status.json.machine.name, 'string');
    assert.match(status.json.machine.nodeVersion, /^v24\./);
    await daemon.stop();
  });
});

describe('desktop notifications', () => {
  it('notify_on_complete sends one notification per finished studio job; off by default', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'fake-notify-'));
    cleanups.push(() => rm(bin, { recursive: true, force: true }));
    const record = join(bin, 'calls.txt');
    await writeFile(join(bin, 'notify-send'), `#!/bin/sh\nprintf '%s|' "$@" >> "${record}"\nprintf '\\n' >> "${record}"\n`);
    await chmod(join(bin, 'notify-send'), 0o755);
    const studio = await FakeStudio.start();
    cleanups.push(() => studio.close());
    const config = await makeConfig(studio.url, { extra: 'notify_on_complete = true\n' });
    cleanups.push(() => config.cleanup());
    const previous = { PATH: process.env.PATH, DISPLAY: process.env.DISPLAY };
    process.env.PATH = `${bin}:${process.env.PATH}`;
    process.env.DISPLAY = ':99';
    const daemon = new DaemonProcess(config.configPath);
    process.env.PATH = previous.PATH;
    if (previous.DISPLAY === undefined) delete process.env.DISPLAY;
    else process.env.DISPLAY = previous.DISPLAY;
    cleanups.push(() => !daemon.exitInfo && daemon.child.kill('SIGKILL'));
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'job-notify', attempt: 1, kind: 'llm' }));
    await connection.jobFrame('completeJson', 'job-notify');
    const calls = await pollUntil(async () => {
      const text = await readFile(record, 'utf8').catch(() => '');
      return text.includes('job-notify') ? text : undefined;
    }, 'the notification');
    assert.equal(calls.trim().split('\n').length, 1);
    assert.match(calls, /Job done/);
    await daemon.stop();
  });
});
