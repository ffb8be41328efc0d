// Stale attempts refused, on both studio hosts (test/helpers/hosts.ts). A worker takes a job and
// goes silent (socket open, no heartbeat); its lease (2 s) runs out, the sweep — the Node host's
// timer, the Durable Object's alarm — requeues the job and tells it to stop, and a real worker
// daemon finishes the next attempt. On Cloudflare the object is then evicted from memory (its
// hibernatable sockets stay open), so what follows meets a rebuilt object. The silent worker's
// late frames for its old attempt are refused (an error frame, no progress recorded) and its
// late result upload is a 409 that stores nothing: the job keeps the second attempt's result.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StudioFrame } from '@studio-worker/protocol';
import { renderSyntheticImage } from '../../packages/worker/src/engines/synthetic/index.ts';
import { holdImageClaim, rawPost, type HeldClaim } from '../helpers/file-result.ts';
import { forEachHost } from '../helpers/hosts.ts';
import { startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../helpers/processes.ts';
import { parseAnswer, rawRequest } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  const cleanup: Array<() => unknown> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-stale-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host, leaseSeconds: 2 });
    cleanup.push(() => studio.stop());
  });

  after(async () => {
    for (const stop of cleanup.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('stale attempts', () => {
    it('a swept claim\'s late frames and result upload are refused (also after an eviction); the next attempt\'s result is kept', { timeout: 60_000 }, async () => {
      const silent: HeldClaim = await holdImageClaim(studio, 'left behind', { heartbeats: false });
      cleanup.push(() => silent.close());
      const { jobId } = silent.claim;
      assert.equal(silent.claim.attempt, 1);
      await waitFor('the silent worker\'s attempt to run', async () => (await studio.api.job(jobId)).status === 'running');

      // A real worker is there to take the job once the sweep requeues it.
      const [daemon] = (await startApprovedWorkers(studio, dir, ['next'])) as [Proc];
      cleanup.push(() => daemon.stop());
      const cancel = await silent.frame((f) => f.type === 'cancel' && f.jobId === jobId);
      assert.equal((cancel as Extract<StudioFrame, { type: 'cancel' }>).attempt, 1, 'the sweep told the silent worker its attempt is over');
      const done = await waitFor('the second attempt to finish on the daemon', async () => {
        const view = await studio.api.job(jobId);
        return view.status === 'done' ? view : undefined;
      });
      assert.equal(done.attempt, 2);
      assert.deepEqual(done.attempts?.map((a) => [a.attempt, a.outcome]), [[1, 'lost'], [2, 'done']]);
      assert.notEqual(done.lastWorkerId, silent.workerId);
      const kept = await studio.api.result(jobId);

      if (host === 'cloudflare') {
        // Out of memory mid-session; the silent worker's socket stays open (Node has no such thing).
        const evicted = await fetch(`${studio.url}/__test/evict?pool=default`, { method: 'POST' });
        assert.equal(evicted.status, 200, await evicted.text());
      }

      // Late frames for attempt 1: progress changes nothing, a JSON result is refused by name.
      silent.send({ type: 'progress', jobId, attempt: 1, phase: 'stale progress', fraction: 0.5 });
      silent.send({ type: 'completeJson', jobId, attempt: 1, result: { stale: true } });
      const refused = (await silent.frame((f) => f.type === 'error' && f.jobId === jobId)) as Extract<StudioFrame, { type: 'error' }>;
      assert.equal(refused.code, 'stale_attempt');
      assert.equal(refused.attempt, 1);
      assert.match(refused.message, /refused: the job is done at attempt 2/);
      assert.equal(silent.ws.readyState, silent.ws.OPEN, 'a stale frame is refused, the session kept');

      // The late upload of its file: 409, nothing stored. On a connection of its own: the studio
      // refuses it before reading the body, and under workerd that silently ends a kept-alive
      // connection (keep-alive.test.ts), which would fail the next request here, not this check.
      const { body, contentType } = silent.multipart(Buffer.from('not the real result'));
      const headers = { authorization: `Bearer ${silent.authToken}`, 'content-type': contentType, connection: 'close' };
      const upload = parseAnswer((await rawRequest(studio.port, rawPost(silent.completePath, studio.port, headers, body), { closeWhenComplete: true })).bytes);
      assert.equal(upload.status, 409, upload.body.toString());
      assert.equal(JSON.parse(upload.body.toString()).error, 'stale_attempt');

      const after = await studio.api.job(jobId);
      assert.equal(after.status, 'done');
      assert.equal(after.attempt, 2);
      assert.notEqual(after.progress?.phase, 'stale progress');
      assert.deepEqual(after.attempts?.map((a) => a.outcome), ['lost', 'done']);
      const served = await studio.api.result(jobId);
      assert.deepEqual(served.bytes, kept.bytes, 'the second attempt\'s result is still the one served');
      const task = after.task as Extract<typeof after.task, { kind: 'image' }>;
      const expected = await renderSyntheticImage(task.prompt, task.width ?? 512, task.height ?? 512, task.ext);
      assert.deepEqual(served.bytes, expected.bytes, 'and it is the synthetic engine\'s output, byte for byte');
      if (host === 'cloudflare') assert.match(studio.proc.output, /sessions restored after the object was evicted/, 'the object really was rebuilt');
    });
  });
});
