// Hibernation (issue 12 item 2): the Durable Object is evicted from memory mid-session — through
// the launcher's test-only hook, the same `workerd:unsafe` evict that
// @cloudflare/vitest-pool-workers' evictDurableObject uses — while the worker's socket stays open.
// The next event rebuilds the object, which restores the session from SQL and the socket's
// attachment: the worker's heartbeats go on being answered and the next job is offered and
// completed, all without the worker reconnecting.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { FAST_TIMINGS, startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
let studio: StudioProc;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-hib-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare' });
  cleanup.push(() => studio.stop());
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

const welcomes = (proc: Proc) => proc.output.match(/server welcomed/g)?.length ?? 0;

async function runJob(prompt: string): Promise<string> {
  const [job] = await studio.api.createJobs([{ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: prompt }] } }]);
  assert.ok(job);
  const done = await waitFor(`job "${prompt}" to be done`, async () => {
    const view = await studio.api.job(job.id);
    return view.status === 'done' ? view : undefined;
  });
  return done.lastWorkerId as string;
}

it('a session survives the object being evicted: heartbeats answered, the next job completed, no reconnect', { timeout: 90_000 }, async () => {
  const [worker] = (await startApprovedWorkers(studio, dir, ['hib'])) as [Proc];
  cleanup.push(() => worker.stop());
  const workerId = await runJob('before');
  assert.equal(welcomes(worker), 1);

  const evicted = await fetch(`${studio.url}/__test/evict?pool=default`, { method: 'POST' });
  assert.equal(evicted.status, 200, await evicted.text());
  const evictedAt = Date.now();

  // Heartbeats answered: the worker declares a connection dead after readIdleTimeoutMs without a
  // frame, so a heartbeat recorded later than that after the eviction means every one in between
  // was answered (or it would have reconnected and been welcomed again).
  const idle = FAST_TIMINGS.readIdleTimeoutMs as number;
  await waitFor(
    `a heartbeat more than ${idle} ms after the eviction`,
    async () => {
      const view = (await studio.api.workers()).find((w) => w.id === workerId);
      return view?.lastHeartbeatAt !== undefined && Date.parse(view.lastHeartbeatAt) > evictedAt + idle + 200;
    },
    { timeoutMs: idle * 4 },
  );
  assert.equal(await runJob('after'), workerId);
  assert.equal(welcomes(worker), 1, `the worker never reconnected:\n${worker.output.slice(-2000)}`);
  assert.doesNotMatch(worker.output, /treating the connection as dead/);
  // And the object really was rebuilt (the hook is no no-op): its constructor restored the session.
  assert.match(studio.proc.output, /sessions restored after the object was evicted/);
  await worker.stop();
});

it('an eviction while a job runs: the held claim is restored and its result accepted for the same attempt', { timeout: 90_000 }, async () => {
  await studio.api.json('POST', '/models', { id: 'paced-llm', kind: 'llm', source: { engine: 'synthetic', cliDefaults: { delayMs: 2_000 } } });
  const [worker] = (await startApprovedWorkers(studio, dir, ['mid-job'])) as [Proc];
  cleanup.push(() => worker.stop());
  const [job] = await studio.api.createJobs([{ model: 'paced-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'across an eviction' }] } }]);
  assert.ok(job);
  await waitFor('the job to be running', async () => (await studio.api.job(job.id)).status === 'running');

  const evicted = await fetch(`${studio.url}/__test/evict?pool=default`, { method: 'POST' });
  assert.equal(evicted.status, 200, await evicted.text());

  const done = await waitFor('the job to be done', async () => {
    const view = await studio.api.job(job.id);
    return view.status === 'done' || view.status === 'failed' ? view : undefined;
  });
  assert.equal(done.status, 'done');
  assert.equal(done.attempt, 1, 'no requeue: the restored session still held the claim');
  assert.equal(done.lastWorkerId, (await studio.api.workers()).find((w) => w.label === 'mid-job')?.id);
  assert.equal(welcomes(worker), 1, `the worker never reconnected:\n${worker.output.slice(-2000)}`);
});
