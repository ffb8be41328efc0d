import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { httpApiBase, type WorkerFrame } from '@studio-worker/protocol';
import { ResultDelivery } from '../src/runner/delivery.ts';
import { LinkHolder, type StudioLink } from '../src/session/link.ts';
import { Outbox } from '../src/runner/outbox.ts';
import { FakeStudio } from './helpers/fake-studio.ts';
import { Changes } from './helpers/wait.ts';

describe('result delivery (in-process, fake studio)', () => {
  let dir: string;
  let studio: FakeStudio;
  let outbox: Outbox;
  let links: LinkHolder;
  let changes: Changes;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-delivery-'));
    studio = await FakeStudio.start();
    changes = new Changes();
    outbox = await Outbox.open(join(dir, 'outbox'), silentLogger);
    outbox.onChange(() => changes.signal());
    links = new LinkHolder();
  });
  afterEach(async () => {
    await studio.close();
    await rm(dir, { recursive: true, force: true });
  });

  function link(id: number): StudioLink & { frames: WorkerFrame[]; controller: AbortController } {
    const controller = new AbortController();
    const frames: WorkerFrame[] = [];
    return {
      id,
      features: new Set(),
      closed: controller.signal,
      controller,
      frames,
      send(frame) {
        frames.push(frame);
        changes.signal();
        return true;
      },
      has: () => false,
    };
  }

  function delivery(timings = { uploadRetryBaseMs: 5, uploadGiveUpMs: 60_000 }) {
    return new ResultDelivery({
      outbox,
      links,
      log: silentLogger,
      timings: () => timings,
      credentials: () => ({ client: { apiBase: httpApiBase(studio.url), userAgent: 'test' }, workerId: 'w-1', authToken: 'tok' }),
    });
  }

  it('gives an upload that keeps failing up as fail{upload_failed, retryable:true}', async () => {
    studio.onUpload = () => ({ status: 503, body: { message: 'overloaded' } });
    const deliver = delivery({ uploadRetryBaseMs: 5, uploadGiveUpMs: 100 });
    const first = link(1);
    links.up(first);
    const entry = await outbox.put('doomed', 2, { kind: 'file', prompt: 'p', ext: 'webp', body: new Uint8Array([1, 2, 3]) });
    deliver.deliver(entry);
    const fail = await changes.waitFor(() => first.frames.find((f) => f.type === 'fail'), 'the give-up failure');
    assert.deepEqual({ ...fail, error: '' }, { type: 'fail', jobId: 'doomed', attempt: 2, code: 'upload_failed', retryable: true, error: '' });
    assert.match(fail.type === 'fail' ? fail.error : '', /overloaded/);
    assert.ok(studio.uploads.length >= 3, `retried (${studio.uploads.length} tries)`);
    assert.deepEqual(outbox.entries().map((e) => e.kind), ['fail'], 'the body is gone, the failure waits for failAck');
    await deliver.acknowledge('fail', 'doomed', 2);
    assert.equal(outbox.size, 0);
  });

  it('stops retrying when the session ends and resumes on the next one', async () => {
    let allow = false;
    studio.onUpload = () => (allow ? { status: 200, body: { ok: true } } : { status: 500, body: {} });
    const deliver = delivery({ uploadRetryBaseMs: 5, uploadGiveUpMs: 60_000 });
    const first = link(1);
    links.up(first);
    const entry = await outbox.put('later', 1, { kind: 'file', prompt: 'p', ext: 'png', body: new Uint8Array([4]) });
    deliver.deliver(entry);
    await studio.waitFor(() => (studio.uploads.length >= 2 ? true : undefined), 'two tries');
    first.controller.abort();
    links.down(first);
    allow = true;
    const second = link(2);
    links.up(second);
    await changes.waitFor(() => (outbox.size === 0 ? true : undefined), 'the upload to succeed on the new session');
    assert.equal(studio.uploads.at(-1)?.jobId, 'later');
  });

  it('sends JSON results and failures once per session and again on the next', async () => {
    const deliver = delivery();
    await outbox.put('j', 1, { kind: 'json', prompt: 'p', result: { ok: 1 } });
    await outbox.put('f', 1, { kind: 'fail', code: 'engine_error', retryable: true, error: 'x' });
    const first = link(1);
    links.up(first);
    deliver.deliverAll(first);
    assert.deepEqual(first.frames.map((f) => f.type), ['completeJson', 'fail'], 'the second deliverAll on the same session sends nothing new');
    const second = link(2);
    links.up(second);
    assert.deepEqual(second.frames.map((f) => f.type), ['completeJson', 'fail']);
    await deliver.acknowledge('json', 'j', 1);
    await deliver.acknowledge('fail', 'f');
    assert.equal(outbox.size, 0);
  });

  it('flush resolves when everything was acknowledged, or false when the session ends first', async () => {
    const deliver = delivery();
    const first = link(1);
    links.up(first);
    await outbox.put('a', 1, { kind: 'json', prompt: '', result: 1 });
    const flushed = deliver.flush(10_000);
    await deliver.acknowledge('json', 'a', 1);
    assert.equal(await flushed, true);
    await outbox.put('b', 1, { kind: 'json', prompt: '', result: 2 });
    const unflushed = deliver.flush(10_000);
    first.controller.abort();
    assert.equal(await unflushed, false);
  });
});
