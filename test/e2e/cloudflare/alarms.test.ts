// Leases swept by the Durable Object's alarm (issue 12 item 2): a worker that holds a claim is
// killed (SIGKILL: no goodbye, no hand-back); nothing else reaches the object but these status
// reads, which never sweep. Only the alarm, set to when the core next needs to wake (the lease's
// end), can requeue the job — so the job going back to the queue with a new attempt and a `lost`
// first attempt, soon after the lease ran out, is the alarm at work.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

const LEASE_SECONDS = 2;
let dir: string;
let studio: StudioProc;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-alarm-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare', args: ['--lease-seconds', String(LEASE_SECONDS)] });
  cleanup.push(() => studio.stop());
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a killed worker\'s claim is requeued by the alarm once its lease runs out', { timeout: 90_000 }, async () => {
  await studio.api.json('POST', '/models', { id: 'slow-image', kind: 'image', source: { engine: 'synthetic', cliDefaults: { delayMs: 60_000 } } });
  const [worker] = (await startApprovedWorkers(studio, dir, ['doomed'])) as [Proc];
  cleanup.push(() => worker.stop());
  const [job] = await studio.api.createJobs([{ model: 'slow-image', task: { kind: 'image', prompt: 'never finishes here', width: 64, height: 64, ext: 'png' } }]);
  assert.ok(job);
  await waitFor('the job to be running', async () => (await studio.api.job(job.id)).status === 'running');

  await worker.kill9();
  const killedAt = Date.now();
  const requeued = await waitFor(
    'the alarm to requeue the job',
    async () => {
      const view = await studio.api.job(job.id);
      return view.status === 'queued' ? view : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  const sweptAfterMs = Date.now() - killedAt;
  assert.equal(requeued.attempt, 2);
  assert.equal(requeued.workerId, undefined);
  assert.equal(requeued.attempts?.find((a) => a.attempt === 1)?.outcome, 'lost');
  // Not before the lease could have run out (the last heartbeat renewed it), and not much after.
  assert.ok(sweptAfterMs < (LEASE_SECONDS + 5) * 1000, `requeued ${sweptAfterMs} ms after the kill`);
});
