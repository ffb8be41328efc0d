import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DaemonProcess, LogLine } from './helpers/daemon-process.ts';
import { offerFrame, STUDIO_FEATURES, type FakeStudio } from './helpers/fake-studio.ts';
import { outboxEmpty, useScenarios } from './helpers/scenario.ts';

const engineStarted = (jobId: string) => (line: LogLine) => line.op === 'job' && line.jobId === jobId && line.msg === 'job started';

/** A studio that understands prefetch (the embedded studio announces every feature it has). */
function withPrefetchStudio(studio: FakeStudio): void {
  studio.welcomeFeatures = [...STUDIO_FEATURES, 'prefetch'];
}

function neverStarted(daemon: DaemonProcess, jobId: string): boolean {
  return !daemon.logs().some(engineStarted(jobId));
}

describe('daemon prefetch (real process, fake studio)', () => {
  const scenario = useScenarios();

  it('takes one offer while a job runs and starts it when the engine is free, before the first upload completes; a third is busy', async () => {
    const { studio, start } = await scenario({ extra: 'prefetch = true' });
    withPrefetchStudio(studio);
    let answerUpload!: () => void;
    const uploadHeld = new Promise<void>((resolve) => (answerUpload = resolve));
    studio.onUpload = async (record) => {
      if (record.jobId === 'pf-a') await uploadHeld;
      return { status: 200, body: { ok: true } };
    };
    const daemon = start();
    const connection = await studio.ready(0);
    const hello = connection.frames.find((f) => f.type === 'hello')!;
    assert.deepEqual(hello.capabilities.protocolFeatures, ['attempt', 'progress', 'cancel', 'resume', 'extended-offers', 'split-text-encoders', 'preview', 'prefetch']);
    assert.equal(hello.capabilities.prefetchSlots, 1);

    connection.send(offerFrame({ jobId: 'pf-a', attempt: 1, kind: 'image', delayMs: 2000 }));
    await connection.jobFrame('accept', 'pf-a');
    connection.send(offerFrame({ jobId: 'pf-b', attempt: 2, delayMs: 200 }));
    const acceptB = await connection.jobFrame('accept', 'pf-b');
    assert.equal(acceptB.attempt, 2);
    connection.send(offerFrame({ jobId: 'pf-c', attempt: 1 }));
    const busy = await connection.jobFrame('reject', 'pf-c');
    assert.equal(busy.code, 'busy');
    const beat = await connection.frame((f) => f.type === 'heartbeat' && f.inFlight.length === 2, 'a heartbeat listing both jobs', {
      after: connection.frames.indexOf(acceptB),
    });
    assert.deepEqual(beat.inFlight, [
      { jobId: 'pf-a', attempt: 1, state: 'running' },
      { jobId: 'pf-b', attempt: 2, state: 'running' },
    ]);
    assert.equal(beat.currentJobId, 'pf-a', 'the job with the engine');
    const waiting = await daemon.waitForState((s) => s.waitingJobIds?.includes('pf-b'), 'the prefetched job in state.json');
    assert.deepEqual(waiting.currentJobIds, ['pf-a', 'pf-b']);
    await daemon.waitForLog((l) => l.op === 'prefetch' && l.jobId === 'pf-b', 'the prefetch log line');

    // pf-a's upload is held open by the studio; pf-b's engine must start anyway.
    const upload = await studio.waitFor(() => studio.uploads.find((u) => u.jobId === 'pf-a'), "pf-a's upload to arrive");
    // The studio heard that pf-a only uploads now (it frees pf-a's slot for the next offer).
    const uploading = await connection.frame((f) => f.type === 'progress' && f.jobId === 'pf-a' && f.phase === 'uploading', "pf-a's uploading phase");
    assert.equal(uploading.attempt, 1);
    await daemon.waitForLog(engineStarted('pf-b'), "pf-b's engine to start while pf-a's upload is open");
    assert.equal(upload.answered, undefined, "pf-a's upload had not completed when pf-b's engine started");
    await connection.jobFrame('completeJson', 'pf-b');
    assert.equal(connection.frames.some((f) => f.type === 'progress' && f.jobId === 'pf-b' && f.phase === 'uploading'), false, 'a JSON result has no upload phase');
    answerUpload();
    await outboxEmpty(daemon.dir, 'both results delivered');
    assert.equal(upload.answered, true);
    assert.ok(neverStarted(daemon, 'pf-c'));
    const finished = daemon.logs().find((l) => l.op === 'job' && l.jobId === 'pf-a' && l.msg === 'job finished');
    assert.ok(typeof finished?.engineMs === 'number' && finished.engineMs >= 1900, `engine time is logged (${finished?.engineMs})`);
    const idle = await daemon.waitForState((s) => s.currentJobIds.length === 0, 'no jobs left');
    assert.ok(idle.engineBusy.busyMs > 0 && idle.engineBusy.busyMs <= idle.engineBusy.sinceMs, JSON.stringify(idle.engineBusy));
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a cancel for the prefetched job drops it with fail{cancelled}; it never runs', async () => {
    const { studio, start } = await scenario({ extra: 'prefetch = true' });
    withPrefetchStudio(studio);
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'run-1', attempt: 1, delayMs: 1500 }));
    await connection.jobFrame('accept', 'run-1');
    connection.send(offerFrame({ jobId: 'drop-1', attempt: 4 }));
    await connection.jobFrame('accept', 'drop-1');
    connection.send({ type: 'cancel', jobId: 'drop-1', attempt: 4, reason: 'operator' });
    const fail = await connection.jobFrame('fail', 'drop-1');
    assert.equal(fail.code, 'cancelled');
    assert.equal(fail.retryable, false);
    assert.equal(fail.attempt, 4);
    const done = await connection.jobFrame('completeJson', 'run-1');
    await outboxEmpty(daemon.dir);
    const idle = await connection.frame((f) => f.type === 'heartbeat' && f.inFlight.length === 0, 'an idle heartbeat', { after: connection.frames.indexOf(done) });
    assert.equal(idle.currentJobId, undefined);
    assert.ok(neverStarted(daemon, 'drop-1'), 'the cancelled job never reached the engine');
    assert.equal(connection.frames.filter((f) => f.jobId === 'drop-1' && f.type === 'completeJson').length, 0);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('SIGTERM hands the prefetched job back at once and lets the running one finish within the grace period', async () => {
    const { studio, config, start } = await scenario({ extra: 'prefetch = true\nshutdown_grace_secs = 10' });
    withPrefetchStudio(studio);
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'running-1', attempt: 1, delayMs: 2000 }));
    await connection.jobFrame('accept', 'running-1');
    connection.send(offerFrame({ jobId: 'waiting-1', attempt: 2 }));
    await connection.jobFrame('accept', 'waiting-1');
    daemon.child.kill('SIGTERM');
    const handedBack = await connection.jobFrame('fail', 'waiting-1');
    assert.equal(handedBack.code, 'handed_back');
    assert.equal(handedBack.retryable, true);
    assert.equal(handedBack.attempt, 2);
    const done = await connection.jobFrame('completeJson', 'running-1');
    assert.ok(connection.frames.indexOf(handedBack) < connection.frames.indexOf(done), 'handed back before the running job finished');
    assert.equal((await connection.closed()).code, 1000);
    assert.equal((await daemon.exited()).code, 0);
    assert.ok(neverStarted(daemon, 'waiting-1'));
    assert.equal(connection.frames.filter((f) => f.type === 'fail' && f.jobId === 'running-1').length, 0, 'the running job was not handed back');
    await outboxEmpty(config.dir);
  });

  it('with prefetch = false nothing changes: no feature in hello, a second offer is busy even for a studio that has it', async () => {
    const { studio, start } = await scenario({ extra: 'prefetch = false' });
    withPrefetchStudio(studio);
    const daemon = start();
    const connection = await studio.ready(0);
    const hello = connection.frames.find((f) => f.type === 'hello')!;
    assert.deepEqual(hello.capabilities.protocolFeatures, ['attempt', 'progress', 'cancel', 'resume', 'extended-offers', 'split-text-encoders', 'preview']);
    assert.equal('prefetchSlots' in hello.capabilities, false);
    connection.send(offerFrame({ jobId: 'solo-1', delayMs: 1500 }));
    await connection.jobFrame('accept', 'solo-1');
    connection.send(offerFrame({ jobId: 'second-1' }));
    const busy = await connection.jobFrame('reject', 'second-1');
    assert.equal(busy.code, 'busy');
    await connection.jobFrame('completeJson', 'solo-1');
    assert.ok(neverStarted(daemon, 'second-1'));
    assert.equal((await daemon.stop()).code, 0);
  });

  it('does not prefetch for a studio that did not announce the feature', async () => {
    const { studio, start } = await scenario({ extra: 'prefetch = true' });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'only-1', delayMs: 1500 }));
    await connection.jobFrame('accept', 'only-1');
    connection.send(offerFrame({ jobId: 'extra-1' }));
    const busy = await connection.jobFrame('reject', 'extra-1');
    assert.equal(busy.code, 'busy');
    await connection.jobFrame('completeJson', 'only-1');
    assert.equal((await daemon.stop()).code, 0);
  });
});
