import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { StudioEvent } from '@studio-worker/protocol';
import { connectWorker, imageJob, makeHarness, send } from './harness.ts';

it('a progress frame’s live preview goes to the dashboards’ feed and is not stored with the job', () => {
  const h = makeHarness();
  const events: StudioEvent[] = [];
  h.ports.events = { enabled: true, publish: (event) => events.push(event) };
  const w = connectWorker(h);
  const job = imageJob(h);
  send(h, w.connId, { type: 'accept', jobId: job.id, attempt: 1 });
  const data = Buffer.from([0xff, 0xd8, 0xff, 0xe0]).toString('base64');
  send(h, w.connId, { type: 'progress', jobId: job.id, attempt: 1, phase: 'generating', step: 3, total: 8, preview: { mime: 'image/jpeg', data } });
  assert.deepEqual(events.filter((e) => e.type === 'jobPreview'), [{ type: 'jobPreview', jobId: job.id, mime: 'image/jpeg', data }]);
  const stored = h.core.jobs.get(job.id);
  assert.ok(stored.ok);
  assert.equal(stored.value.progress?.step, 3);
  assert.equal(JSON.stringify(stored.value).includes(data), false, 'the preview is not stored');

  // Too big for the frame schema: refused as malformed, nothing published.
  const big = 'A'.repeat(100_000);
  send(h, w.connId, { type: 'progress', jobId: job.id, attempt: 1, phase: 'generating', preview: { mime: 'image/jpeg', data: big } });
  assert.equal(events.filter((e) => e.type === 'jobPreview').length, 1);
});
