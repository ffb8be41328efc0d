import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { DEFAULT_DELIVERY_POLICY } from '../../src/core/index.ts';
import { imageJob, makeHarness } from './harness.ts';

describe('webhook deliveries (core, manual clock)', () => {
  it('retries a failing endpoint with doubling delays for a day, then marks the delivery failed', async () => {
    const h = makeHarness();
    const hook = h.core.webhooks.create('http://127.0.0.1:9/hook', ['cancelled']);
    assert.ok(hook.ok);
    const job = imageJob(h, 'never delivered');
    h.core.jobs.cancel(job.id);
    let calls = 0;
    const failing = (async () => {
      calls++;
      return new Response('down', { status: 503 });
    }) as typeof fetch;
    const created = h.clock.now();
    const view = () => (h.core.webhooks.deliveries(hook.value.id, {}) as { ok: true; value: Array<{ status: string; nextAt?: string; attempts: number; lastError?: string }> }).value[0];
    // Every try fails; the clock jumps to each next try.
    assert.equal(await h.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, failing), 1);
    assert.equal(view()?.lastError, 'the endpoint answered 503');
    const all: number[] = [];
    for (;;) {
      const d = view();
      if (!d || d.status === 'failed') break;
      const wait = Date.parse(d.nextAt as string) - h.clock.now();
      all.push(wait);
      h.clock.advance(wait - 1);
      assert.equal(await h.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, failing), 0, 'not before nextAt');
      h.clock.advance(1);
      assert.equal(await h.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, failing), 1, 'due at nextAt');
    }
    assert.ok((all[0] as number) >= 0.75 * 10_000 && (all[0] as number) <= 1.25 * 10_000, `first retry after about 10 s: ${all[0]}`);
    const elapsed = h.clock.now() - created;
    assert.ok(elapsed <= 24 * 3600_000, `gave up within the day (${elapsed / 3600_000} h)`);
    assert.ok(elapsed > 20 * 3600_000, `kept trying for most of the day (${elapsed / 3600_000} h)`);
    assert.ok(all.slice(0, 6).every((w, i) => i === 0 || w > (all[i - 1] as number) * 1.1), `delays grow: ${all.slice(0, 6)}`);
    assert.ok(Math.max(...all) <= 1.25 * 3600_000, 'capped at about an hour');
    assert.equal(view()?.attempts, calls);
    assert.equal(await h.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, failing), 0, 'a failed delivery is not tried again');
  });

  it('signs each delivery the Standard Webhooks way and stops after a 2xx', async () => {
    const h = makeHarness();
    const hook = h.core.webhooks.create('https://hooks.example/studio', ['cancelled']);
    assert.ok(hook.ok);
    assert.equal(h.core.webhooks.create('http://hooks.example/plain', ['done']).ok, false, 'plain http only to loopback');
    const job = imageJob(h, 'signed');
    h.core.jobs.cancel(job.id);
    const seen: Array<{ url: string; headers: Headers; body: string }> = [];
    const ok = (async (url: string, init: RequestInit) => {
      seen.push({ url, headers: new Headers(init.headers), body: String(init.body) });
      return new Response(null, { status: 204 });
    }) as unknown as typeof fetch;
    assert.equal(await h.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, ok), 1);
    assert.equal(await h.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, ok), 0);
    const [sent] = seen;
    assert.ok(sent);
    const id = sent.headers.get('webhook-id') as string;
    const ts = sent.headers.get('webhook-timestamp') as string;
    const key = Buffer.from(hook.value.secret.slice('whsec_'.length), 'base64');
    assert.equal(sent.headers.get('webhook-signature'), `v1,${createHmac('sha256', key).update(`${id}.${ts}.${sent.body}`).digest('base64')}`);
    assert.equal(Number(ts), Math.floor(h.clock.now() / 1000));
    const body = JSON.parse(sent.body);
    assert.deepEqual([body.id, body.type, body.jobId, body.job.status], [id, 'job.cancelled', job.id, 'cancelled']);
  });
});
