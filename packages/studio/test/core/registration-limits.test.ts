// What a stranger can make the studio store through register-request is bounded (issue 9, Found 5):
// capabilities size, strings and lists; pending requests per address and in all; expired and
// superseded ones deleted; dashboards told each change, never the whole list.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AutoRegisterRequest, StudioEvent } from '@studio-worker/protocol';
import { capabilities, makeHarness } from './harness.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function request(installId: string, caps = capabilities({ machineName: installId }), secret = installId): AutoRegisterRequest {
  return { installId, registrationSecretHash: sha(secret), capabilities: caps, userAgent: 'studio-worker/0.1.0' };
}

const rows = (h: ReturnType<typeof makeHarness>) => h.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM registration_requests')?.n;

describe('registration limits', () => {
  it('refuses capabilities over the size limit, over-long strings and over-long lists, storing nothing', () => {
    const h = makeHarness({ maxCapabilitiesBytes: 8 * 1024 });
    const huge = h.core.registration.request(request('install-big-001', capabilities({ supportedModels: Array.from({ length: 900 }, (_, i) => `model-${i}-with-a-longer-name`) })), '10.0.0.1', '');
    assert.ok(!huge.ok && huge.error.status === 413 && /bytes/.test(huge.error.message));
    const longName = h.core.registration.request(request('install-big-002', capabilities({ machineName: 'x'.repeat(5000) })), '10.0.0.1', '');
    assert.ok(!longName.ok && /capabilities\.machineName/.test(longName.error.message));
    const h2 = makeHarness();
    const longList = h2.core.registration.request(request('install-big-003', capabilities({ protocolFeatures: Array.from({ length: 5000 }, () => 'a') })), '10.0.0.1', '');
    assert.ok(!longList.ok && /protocolFeatures lists 5000/.test(longList.error.message));
    assert.equal(rows(h), 0);
    assert.equal(rows(h2), 0);
  });

  it('caps pending requests per source address and in all, with a 429 that says why', () => {
    const h = makeHarness({ maxPendingPerAddress: 2, maxPendingTotal: 3 });
    const ask = (id: string, ip: string) => h.core.registration.request(request(id), ip, '');
    assert.ok(ask('install-a-0001', '10.0.0.1').ok);
    assert.ok(ask('install-a-0002', '10.0.0.1').ok);
    const third = ask('install-a-0003', '10.0.0.1');
    assert.ok(!third.ok && third.error.status === 429 && third.error.code === 'too_many_pending' && /10\.0\.0\.1/.test(third.error.message));
    // The same install asking again is no new entry, so it is still answered.
    assert.ok(ask('install-a-0001', '10.0.0.1').ok);
    assert.ok(ask('install-b-0001', '10.0.0.2').ok);
    const overall = ask('install-c-0001', '10.0.0.3');
    assert.ok(!overall.ok && overall.error.status === 429);
    // A decision makes room.
    const first = h.core.registration.pending()[0];
    assert.ok(first && h.core.registration.reject(first.requestId, 'no').ok);
    assert.ok(ask('install-c-0001', '10.0.0.3').ok);
  });

  it('deletes expired requests and superseded ones instead of keeping them', () => {
    const h = makeHarness({ pendingTtlMs: 60_000 });
    assert.ok(h.core.registration.request(request('install-old-001'), '10.0.0.1', '').ok);
    // The same install with a new secret replaces its request.
    assert.ok(h.core.registration.request(request('install-old-001', undefined, 'other secret'), '10.0.0.1', '').ok);
    assert.equal(rows(h), 1);
    h.clock.advance(61_000);
    assert.ok(h.core.registration.request(request('install-new-001'), '10.0.0.2', '').ok);
    assert.equal(rows(h), 1, 'the expired request is gone from the table');
  });

  it('tells dashboards each change of the pending list on its own', () => {
    const listening = makeHarness();
    const seen: StudioEvent[] = [];
    // A dashboard connects: the sink the core holds starts listening.
    Object.assign(listening.ports.events, { enabled: true, publish: (e: StudioEvent) => seen.push(e) });
    for (let i = 0; i < 5; i++) assert.ok(listening.core.registration.request(request(`install-feed-${i}00`), '10.0.0.1', '').ok);
    const added = seen.filter((e) => e.type === 'pendingAdded');
    assert.equal(added.length, 5);
    const [first] = listening.core.registration.pending();
    assert.ok(first && listening.core.registration.approve(first.requestId, undefined).ok);
    assert.deepEqual(seen.filter((e) => e.type === 'pendingRemoved'), [{ type: 'pendingRemoved', requestId: first.requestId }]);
    assert.ok(!seen.some((e) => (e.type as string) === 'pending'), 'never the whole list');
  });
});
