// End to end, on both studio hosts (test/helpers/hosts.ts): a real studio process — `studio serve`,
// or the Cloudflare host under workerd with its results in R2 — and two real `studio-worker run`
// processes over real sockets run 125 jobs of all five kinds; every result is checked against the
// synthetic engine's deterministic output.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { JobView, TaskInput } from '@studio-worker/protocol';
import {
  renderSyntheticImage,
  renderSyntheticWav,
  syntheticChatCompletion,
  syntheticTranscript,
} from '../../packages/worker/src/engines/synthetic/index.ts';
import { forEachHost } from '../helpers/hosts.ts';
import { startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

function tasksFor(i: number): Array<{ model: string; task: TaskInput }> {
  return [
    { model: 'synthetic-image', task: { kind: 'image', prompt: `fox ${i}`, width: 64 + (i % 4) * 16, height: 48, ext: i % 2 ? 'png' : 'webp' } },
    { model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: `question ${i}` }] } },
    { model: 'synthetic-stt', task: { kind: 'audio_stt', inputUrl: `https://example.invalid/clip-${i}.wav`, language: i % 2 ? 'nl' : undefined } },
    { model: 'synthetic-tts', task: { kind: 'audio_tts', text: `say ${i}` } },
    { model: 'synthetic-video', task: { kind: 'video', prompt: `waves ${i}`, width: 64, height: 64 } },
  ];
}

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  const workers: Proc[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-jobs-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
    workers.push(...(await startApprovedWorkers(studio, dir, ['w1', 'w2'])));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await studio?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('jobs of every kind through real processes', () => {
    it('runs 125 jobs to done, each with its deterministic result, spread over both workers', async () => {
      const requests = Array.from({ length: 25 }, (_, i) => tasksFor(i)).flat();
      const created = await studio.api.createJobs(requests);
      assert.equal(created.length, 125);
      const ids = created.map((j) => j.id);
      await waitFor('all 125 jobs done', async () => (await studio.api.counts()).done === 125, { timeoutMs: 60_000 });

      const jobs: JobView[] = await Promise.all(ids.map((id) => studio.api.job(id)));
      const byWorker = new Map<string, number>();
      for (const job of jobs) {
        assert.equal(job.status, 'done', `${job.id} ${job.lastError ?? ''}`);
        assert.equal(job.attempt, 1);
        assert.deepEqual(job.attempts?.map((a) => a.outcome), ['done']);
        byWorker.set(job.lastWorkerId ?? '?', (byWorker.get(job.lastWorkerId ?? '?') ?? 0) + 1);
      }
      assert.equal(byWorker.size, 2, `both workers took jobs: ${JSON.stringify([...byWorker])}`);

      for (const job of jobs) {
        const result = await studio.api.result(job.id);
        const task = job.task;
        switch (task.kind) {
          case 'image': {
            const expected = await renderSyntheticImage(task.prompt, task.width ?? 512, task.height ?? 512, task.ext);
            assert.equal(result.type, task.ext === 'png' ? 'image/png' : 'image/webp');
            const meta = await sharp(result.bytes).metadata();
            assert.equal(meta.width, task.width);
            assert.equal(meta.height, task.height);
            assert.deepEqual(result.bytes, expected.bytes, `image ${job.id} matches the synthetic output byte for byte`);
            break;
          }
          case 'llm':
            assert.deepEqual(JSON.parse(Buffer.from(result.bytes).toString()), syntheticChatCompletion(task.messages));
            break;
          case 'audio_stt':
            assert.deepEqual(JSON.parse(Buffer.from(result.bytes).toString()), syntheticTranscript(task.inputUrl, task.language));
            break;
          case 'audio_tts':
            assert.equal(result.type, 'audio/wav');
            assert.deepEqual(result.bytes, renderSyntheticWav(task.text));
            break;
          case 'video': {
            assert.equal(result.type, 'image/webp');
            const meta = await sharp(result.bytes).metadata();
            assert.equal(meta.format, 'webp');
            assert.equal(meta.width, 64);
            break;
          }
        }
      }
    });

    it('a job for an engine no worker has is never served by another engine', async () => {
      await studio.api.json('POST', '/models', {
        id: 'z-image-turbo-test',
        kind: 'image',
        vramGbEstimate: 4,
        source: { engine: 'sd-cpp', files: [{ role: 'diffusion-model', url: 'https://example.invalid/z.gguf', filename: 'z.gguf' }] },
      });
      const [job] = await studio.api.createJobs([{ model: 'z-image-turbo-test', task: { kind: 'image', prompt: 'must not be synthetic' } }]);
      assert.ok(job);
      // Let both workers heartbeat several times (each heartbeat is a chance to offer).
      const beats = async () => (await studio.api.workers()).map((w) => Date.parse(w.lastHeartbeatAt ?? '0'));
      const before = await beats();
      await waitFor('three more heartbeats from each worker', async () => (await beats()).every((t, i) => t > (before[i] ?? 0) + 500), { timeoutMs: 10_000 });
      const after = await studio.api.job(job.id);
      assert.equal(after.status, 'queued');
      assert.equal(after.attempt, 1);
      assert.equal(after.lastWorkerId, undefined, 'never offered to a worker without sd-cpp');
      assert.equal(after.result, undefined);
    });
  });
});
