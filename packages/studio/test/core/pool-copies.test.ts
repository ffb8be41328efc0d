// Tokens and webhooks shared by pools (issue 12): one core makes a token or webhook, another adopts
// its record — the token's hash, never the token; the webhook's id and secret — and from then on
// the raw token authenticates there and the endpoint hears that core's jobs, signed alike.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_DELIVERY_POLICY, TokenRecord, tokenRecordOf, WebhookRecord, webhookRecordOf } from '../../src/core/index.ts';
import { nodeCrypto } from '../../src/node/crypto.ts';
import { makeHarness } from './harness.ts';

describe('token and webhook records adopted by another pool (core)', () => {
  it('an adopted token authenticates with the same raw token, keeps its id, scope and creation time, and is revoked per core', () => {
    const made = makeHarness({ pool: undefined });
    const other = makeHarness({ pool: 'gpu' });
    const created = made.core.tokens.create('pipeline', 'submit');
    const record = tokenRecordOf(created, nodeCrypto);
    assert.ok(!JSON.stringify(record).includes(created.token), 'the record never holds the raw token');
    assert.equal(other.core.tokens.authenticate(created.token), undefined, 'unknown before the copy');
    const adopted = other.core.tokens.adopt(created.id, TokenRecord.parse(record));
    assert.ok(adopted.ok, adopted.ok ? '' : adopted.error.message);
    assert.deepEqual(adopted.value, { id: created.id, name: 'pipeline', scope: 'submit', createdAt: created.createdAt, lastUsedAt: undefined, revokedAt: undefined });
    assert.deepEqual(other.core.tokens.authenticate(created.token), { id: created.id, scope: 'submit' });
    assert.ok(other.core.tokens.adopt(created.id, record).ok, 'repeating the copy is harmless');
    assert.equal(other.core.tokens.list().length, 1);

    const clash = other.core.tokens.adopt(created.id, { ...record, tokenHash: 'b'.repeat(64) });
    assert.equal(clash.ok ? 0 : clash.error.status, 409, 'another token under a used id is refused');
    const sameHash = other.core.tokens.adopt('tok-0000000000ff', record);
    assert.equal(sameHash.ok ? 0 : sameHash.error.status, 409, 'a used hash under another id is refused');
    const badId = other.core.tokens.adopt('job-1', record);
    assert.equal(badId.ok ? 0 : badId.error.status, 400);

    assert.ok(other.core.tokens.revoke(created.id).ok);
    assert.equal(other.core.tokens.authenticate(created.token), undefined);
    assert.ok(made.core.tokens.authenticate(created.token), 'each core revokes its own copy (the Worker revokes in every pool)');
    assert.equal(TokenRecord.safeParse({ ...record, tokenHash: 'not a hash' }).success, false);
  });

  it('an adopted webhook keeps id and secret, delivers that core\'s jobs signed alike under pool-prefixed event ids, and refuses a clash', async () => {
    const made = makeHarness();
    const other = makeHarness({ pool: 'gpu' });
    const hook = made.core.webhooks.create('https://hooks.example/studio', ['cancelled']);
    assert.ok(hook.ok);
    const record = WebhookRecord.parse(webhookRecordOf(hook.value));
    const adopted = other.core.webhooks.adopt(hook.value.id, record);
    assert.ok(adopted.ok, adopted.ok ? '' : adopted.error.message);
    assert.equal(adopted.value.id, hook.value.id);
    assert.ok(other.core.webhooks.adopt(hook.value.id, record).ok, 'repeating the copy is harmless');

    const job = other.core.jobs.create({ model: 'synthetic-image', task: { kind: 'image', prompt: 'pooled', width: 64, height: 64, steps: 20, ext: 'png' }, gameId: '', assetName: '', priority: 0, pool: 'gpu' });
    assert.ok(job.ok, job.ok ? '' : job.error.message);
    other.core.jobs.cancel(job.value.id);
    const seen: Headers[] = [];
    const capture = (async (_url: string, init: RequestInit) => {
      seen.push(new Headers(init.headers));
      return new Response(null, { status: 204 });
    }) as unknown as typeof fetch;
    assert.equal(await other.core.webhooks.deliverDue(DEFAULT_DELIVERY_POLICY, capture), 1);
    assert.match(seen[0]?.get('webhook-id') ?? '', /^gpu\.evt_\d+$/, 'a pooled core\'s event ids carry its pool');

    const clash = other.core.webhooks.adopt(hook.value.id, { ...record, secret: 'whsec_AAAA' });
    assert.equal(clash.ok ? 0 : clash.error.status, 409);
    assert.ok(other.core.webhooks.remove(hook.value.id).ok);
    const afterRemoval = other.core.webhooks.adopt(hook.value.id, record);
    assert.equal(afterRemoval.ok ? 0 : afterRemoval.error.status, 409, 'a webhook removed here is not brought back by a late copy');
    const plainHttp = other.core.webhooks.adopt('wh-00aa', { ...record, url: 'http://example.com/hook' });
    assert.equal(plainHttp.ok ? 0 : plainHttp.error.status, 400, 'the same url rule as creation');
  });
});
