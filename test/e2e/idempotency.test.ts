// Idempotent submission from outside, on both studio hosts (test/helpers/hosts.ts): a real studio
// process, plain HTTP, a restart of the studio (on the same data) in between. The same key answers
// the same job (200, not a new one), also after the restart; the same key with a different body is
// a 409 that says what to do.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JobView } from '@studio-worker/protocol';
import { forEachHost } from '../helpers/hosts.ts';
import { startStudioProcess, type StudioProc } from '../helpers/processes.ts';

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  const job = (prompt: string) => ({ model: 'synthetic-image', task: { kind: 'image', prompt, width: 64, height: 64 } });

  async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
    const res = await fetch(`${studio.url}/graphics/api${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${studio.api.token}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: await res.json(), headers: res.headers };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-idem-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
  });

  after(async () => {
    await studio?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('idempotent submission against a real studio process', () => {
    it('POST /jobs: same Idempotency-Key → the same job, across a restart; different body → 409', async () => {
      const first = await post('/jobs', job('fox'), { 'idempotency-key': 'asset-fox-1' });
      assert.equal(first.status, 201);
      const again = await post('/jobs', job('fox'), { 'idempotency-key': 'asset-fox-1' });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal((again.json as JobView).id, first.json.id);

      const other = await post('/jobs', job('owl'), { 'idempotency-key': 'asset-fox-1' });
      assert.equal(other.status, 409);
      assert.equal(other.json.error, 'idempotency_conflict');
      assert.match(other.json.message, new RegExp(`already used for job ${first.json.id} with a different body`));

      const unkeyed = [await post('/jobs', job('fox')), await post('/jobs', job('fox'))];
      assert.deepEqual(unkeyed.map((r) => r.status), [201, 201]);
      assert.notEqual(unkeyed[0]?.json.id, unkeyed[1]?.json.id, 'without a key every POST is a new job');

      const bad = await post('/jobs', job('fox'), { 'idempotency-key': 'has space' });
      assert.equal(bad.status, 400);
      assert.match(bad.json.message, /Idempotency-Key/);

      await studio.stop();
      studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
      const afterRestart = await post('/jobs', job('fox'), { 'idempotency-key': 'asset-fox-1' });
      assert.equal(afterRestart.status, 200);
      assert.equal(afterRestart.json.id, first.json.id);
      assert.equal((await post('/jobs', job('owl'), { 'idempotency-key': 'asset-fox-1' })).status, 409);
      assert.equal((await studio.api.json<{ jobs: JobView[] }>('GET', '/jobs?limit=500')).jobs.length, 3, 'one keyed job and two unkeyed ones, nothing more');
    });

    it('POST /jobs/batch: per-entry keys; a re-sent batch makes nothing new; mixed batches make only the new ones', async () => {
      const entries = Array.from({ length: 5 }, (_, i) => ({ ...job(`batch ${i}`), key: `b-${i}` }));
      const first = await post('/jobs/batch', { jobs: entries.slice(0, 3) });
      assert.equal(first.status, 201);
      assert.equal(first.json.created, 3);
      const second = await post('/jobs/batch', { jobs: entries });
      assert.equal(second.status, 201);
      assert.equal(second.json.created, 2);
      assert.deepEqual(second.json.jobs.slice(0, 3).map((j: JobView) => j.id), first.json.jobs.map((j: JobView) => j.id));
      const replay = await post('/jobs/batch', { jobs: entries });
      assert.equal(replay.status, 200);
      assert.equal(replay.json.created, 0);
      assert.deepEqual(replay.json.jobs.map((j: JobView) => j.id), second.json.jobs.map((j: JobView) => j.id));

      // The same key twice in one batch: same body → one job; different bodies → 409 naming both entries, nothing made.
      const twins = await post('/jobs/batch', { jobs: [{ ...job('twin'), key: 't' }, { ...job('twin'), key: 't' }] });
      assert.equal(twins.json.created, 1);
      assert.equal(twins.json.jobs[0].id, twins.json.jobs[1].id);
      const clash = await post('/jobs/batch', { jobs: [{ ...job('new one'), key: 'fresh' }, { ...job('a'), key: 'x' }, { ...job('b'), key: 'x' }] });
      assert.equal(clash.status, 409);
      assert.match(clash.json.message, /jobs\[2\]: idempotency key "x" is also used by jobs\[1\]/);
      const lookup = await post('/jobs/batch', { jobs: [{ ...job('new one'), key: 'fresh' }] });
      assert.equal(lookup.json.created, 1, 'the refused batch made nothing, not even its valid first entry');

      // A batch key and a header key share one namespace (both are the admin's keys).
      const viaHeader = await post('/jobs', job('batch 0'), { 'idempotency-key': 'b-0' });
      assert.equal(viaHeader.status, 200);
      assert.equal(viaHeader.json.id, first.json.jobs[0].id);
    });

    it('POST /jobs/lookup answers many jobs at once and names the unknown ids', async () => {
      const made = await post('/jobs/batch', { jobs: [job('l1'), job('l2')] });
      const ids = made.json.jobs.map((j: JobView) => j.id);
      const res = await post('/jobs/lookup', { ids: [...ids, 'job-nope'] });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json.jobs.map((j: JobView) => j.id), ids);
      assert.deepEqual(res.json.missing, ['job-nope']);
    });
  });
});
