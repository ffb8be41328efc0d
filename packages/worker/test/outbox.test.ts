import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { Outbox, outboxKey } from '../src/runner/outbox.ts';

describe('outbox', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'studio-worker-outbox-')), 'outbox');
  });
  afterEach(async () => {
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('stores JSON, file and fail entries on disk (0600) and finds them by job and attempt', async () => {
    const outbox = await Outbox.open(dir, silentLogger);
    const json = await outbox.put('job/1', 2, { kind: 'json', prompt: 'p', result: { a: 1 } });
    const file = await outbox.put('job-2', undefined, { kind: 'file', prompt: 'q', ext: 'png', body: new Uint8Array([1, 2, 3]) });
    await outbox.put('job-3', 1, { kind: 'fail', code: 'engine_error', retryable: true, error: 'boom' });
    assert.equal(outbox.size, 3);
    assert.deepEqual(outbox.entries().map((e) => e.jobId), ['job/1', 'job-2', 'job-3']);
    assert.equal(file.kind === 'file' && file.bytes, 3);
    assert.equal(json.key, outboxKey('job/1', 2));
    assert.deepEqual(outbox.find('job/1', 2).map((e) => e.kind), ['json']);
    assert.deepEqual(outbox.find('job/1', 3), []);
    assert.deepEqual(outbox.find('job-2', 9).map((e) => e.kind), ['file'], 'an entry without attempt matches any');
    assert.deepEqual(outbox.find('job/1', undefined, ['fail']), []);
    for (const name of await readdir(dir)) assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600, name);
    assert.equal((await readdir(dir)).length, 4, 'three metadata files and one body');
  });

  it('reloads what an earlier run left, in order, and cleans up debris', async () => {
    const first = await Outbox.open(dir, silentLogger);
    await first.put('a', 1, { kind: 'json', prompt: 'p', result: [1] });
    const file = await first.put('b', 1, { kind: 'file', prompt: 'q', ext: 'wav', body: new Uint8Array([9]) });
    const lost = await first.put('c', 1, { kind: 'file', prompt: 'r', ext: 'png', body: new Uint8Array([7]) });
    await rm(first.bodyPath(lost));
    await writeFile(join(dir, 'deadbeef.bin'), 'orphan body');
    await writeFile(join(dir, 'x.json.tmp-123-0123abcd'), 'half written');
    await writeFile(join(dir, 'broken.json'), '{ not json');

    const second = await Outbox.open(dir, silentLogger);
    assert.deepEqual(second.entries().map((e) => e.jobId), ['a', 'b'], 'an entry without its body is dropped');
    assert.deepEqual(second.get(file.key), file);
    const names = (await readdir(dir)).sort();
    assert.ok(!names.includes('deadbeef.bin'), 'orphan body removed');
    assert.ok(!names.some((n) => n.includes('.tmp-')), 'temp file removed');
    assert.ok(names.includes('broken.json.corrupt'), 'a corrupt entry is moved aside');
    const next = await second.put('d', 1, { kind: 'json', prompt: '', result: null });
    assert.ok(next.seq > file.seq, 'sequence continues after a reload');
  });

  it('replaces an entry for the same claim and removes the old body', async () => {
    const outbox = await Outbox.open(dir, silentLogger);
    const file = await outbox.put('job', 1, { kind: 'file', prompt: 'p', ext: 'png', body: new Uint8Array([1]) });
    await outbox.put('job', 1, { kind: 'fail', code: 'cancelled', retryable: false, error: 'cancelled by studio' });
    assert.equal(outbox.size, 1);
    assert.equal(outbox.get(file.key)?.kind, 'fail');
    assert.deepEqual(await readdir(dir), [`${file.key}.json`]);
    await outbox.remove(file.key);
    await outbox.remove(file.key);
    assert.equal(outbox.size, 0);
    assert.deepEqual(await readdir(dir), []);
  });

  it('tells listeners about every change', async () => {
    const outbox = await Outbox.open(dir, silentLogger);
    let changes = 0;
    outbox.onChange(() => changes++);
    const entry = await outbox.put('j', 1, { kind: 'json', prompt: '', result: 1 });
    await outbox.remove(entry.key);
    assert.equal(changes, 2);
  });
});
