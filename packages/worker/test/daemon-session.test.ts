import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TEST_AUTH_TOKEN } from './helpers/daemon-process.ts';
import { offerFrame } from './helpers/fake-studio.ts';
import { outboxEmpty, useScenarios } from './helpers/scenario.ts';

describe('daemon session (real process, fake studio)', () => {
  const scenario = useScenarios();

  it('discards an offer that arrives before welcome', async () => {
    const { studio, start } = await scenario();
    studio.autoWelcome = false;
    const daemon = start();
    const connection = await studio.connection(0);
    const hello = await connection.frame((f) => f.type === 'hello', 'hello');
    assert.equal(hello.authToken, TEST_AUTH_TOKEN);
    assert.deepEqual(hello.inFlight, []);
    connection.send(offerFrame({ jobId: 'early-job' }));
    await daemon.waitForLog((l) => /arrived before welcome/.test(l.msg), 'the discarded offer');
    assert.equal(connection.frames.filter((f) => f.type === 'heartbeat').length, 0, 'no heartbeat before welcome');
    connection.send({ type: 'welcome', workerId: 'w-test', serverTime: new Date().toISOString(), protocolFeatures: ['attempt'] });
    const beat = connection.frames.length;
    await connection.frame((f) => f.type === 'heartbeat', 'a heartbeat after welcome', { after: beat });
    await connection.frame((f) => f.type === 'heartbeat', 'a second heartbeat', { after: connection.frames.findIndex((f) => f.type === 'heartbeat') + 1 });
    assert.equal(connection.frames.filter((f) => f.jobId === 'early-job').length, 0, 'the early offer got no answer');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('heartbeats carry fresh capabilities, the current job and inFlight (running, then finished)', async () => {
    const { studio, start } = await scenario();
    studio.autoAck = false;
    const daemon = start();
    const connection = await studio.connection(0);
    const first = await connection.frame((f) => f.type === 'heartbeat', 'a heartbeat');
    const caps = first.capabilities;
    assert.equal(caps.engine, 'multi');
    assert.equal(caps.autoEnabled, true);
    assert.equal(caps.vramThresholdGb, 8);
    assert.deepEqual(caps.protocolFeatures, ['attempt', 'progress', 'cancel', 'resume', 'extended-offers', 'split-text-encoders', 'preview', 'prefetch'], 'prefetch is on by default');
    assert.equal(caps.prefetchSlots, 1);
    assert.ok(caps.taskKinds.includes('llm'));
    assert.ok(caps.supportedModelsPerKind.image.includes('synthetic-image'));
    assert.equal(first.currentJobId, undefined, 'omitted when idle');
    assert.deepEqual(first.inFlight, []);

    connection.send(offerFrame({ jobId: 'hb-job', attempt: 4, delayMs: 2000 }));
    const accept = await connection.jobFrame('accept', 'hb-job');
    const running = await connection.frame((f) => f.type === 'heartbeat' && f.currentJobId === 'hb-job', 'a heartbeat with the job', { after: connection.frames.indexOf(accept) });
    assert.deepEqual(running.inFlight, [{ jobId: 'hb-job', attempt: 4, state: 'running' }]);
    const result = await connection.jobFrame('completeJson', 'hb-job');
    const finished = await connection.frame((f) => f.type === 'heartbeat' && f.currentJobId === undefined, 'an idle heartbeat', { after: connection.frames.indexOf(result) });
    assert.deepEqual(finished.inFlight, [{ jobId: 'hb-job', attempt: 4, state: 'finished' }]);
    connection.send({ type: 'completeAck', jobId: 'hb-job', attempt: 4 });
    await outboxEmpty(daemon.dir);
    const at = connection.frames.length;
    const after = await connection.frame((f) => f.type === 'heartbeat', 'a heartbeat after the ack', { after: at });
    assert.deepEqual(after.inFlight, []);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('offer → accept → completeJson, echoing the attempt and the full prompt', async () => {
    const { studio, start } = await scenario();
    const daemon = start();
    const connection = await studio.ready(0);
    const prompt = `a long prompt ${'x'.repeat(400)}`;
    connection.send(offerFrame({ jobId: 'llm-1', attempt: 3, prompt }));
    const accept = await connection.jobFrame('accept', 'llm-1');
    assert.equal(accept.attempt, 3);
    const done = await connection.jobFrame('completeJson', 'llm-1');
    assert.equal(done.attempt, 3);
    assert.equal(done.prompt, prompt, 'the full prompt, never a preview');
    assert.equal(done.result.object, 'chat.completion');
    await outboxEmpty(daemon.dir, 'the acked result to leave the outbox');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('uploads a binary result as multipart: prompt, ext, attempt and an `image` file part', async () => {
    const { studio, start } = await scenario();
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'img-1', attempt: 2, kind: 'image', prompt: 'a red fox' }));
    const accept = await connection.jobFrame('accept', 'img-1');
    assert.equal(accept.attempt, 2);
    const upload = await studio.waitFor(() => studio.uploads.find((u) => u.jobId === 'img-1'), 'the upload');
    assert.equal(upload.workerId, 'w-test');
    assert.equal(upload.authorization, `Bearer ${TEST_AUTH_TOKEN}`);
    assert.deepEqual(upload.fields, { prompt: 'a red fox', ext: 'png', attempt: '2' });
    assert.equal(upload.files.length, 1);
    const file = upload.files[0]!;
    assert.equal(file.field, 'image');
    assert.equal(file.filename, 'img-1.png');
    assert.equal(file.mimeType, 'image/png');
    assert.deepEqual([...file.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    await outboxEmpty(daemon.dir, 'the uploaded result to leave the outbox');
    assert.equal(connection.frames.filter((f) => f.type === 'completeJson' || f.type === 'fail').length, 0);
    // TTS results use the same route and the same part name.
    connection.send(offerFrame({ jobId: 'tts-1', attempt: 1, kind: 'audio_tts', prompt: 'hello' }));
    const tts = await studio.waitFor(() => studio.uploads.find((u) => u.jobId === 'tts-1'), 'the tts upload');
    assert.equal(tts.files[0]?.field, 'image');
    assert.equal(tts.files[0]?.filename, 'tts-1.wav');
    assert.equal(tts.files[0]?.mimeType, 'audio/wav');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('retries an upload after a 500 and removes it after the 2xx', async () => {
    const { studio, start } = await scenario();
    studio.onUpload = (_record, index) => (index === 0 ? { status: 500, body: { error: 'internal', message: 'disk hiccup' } } : { status: 200, body: { ok: true } });
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'retry-1', kind: 'image' }));
    await studio.waitFor(() => (studio.uploads.length >= 2 ? true : undefined), 'a second upload');
    await outboxEmpty(daemon.dir);
    const warning = await daemon.waitForLog((l) => l.op === 'upload' && l.level === 'warn', 'the retry warning');
    assert.match(warning.msg, /500/);
    assert.match(warning.msg, /disk hiccup/);
    assert.equal(studio.uploads.length, 2);
    assert.deepEqual(studio.uploads[1]?.files[0]?.bytes, studio.uploads[0]?.files[0]?.bytes, 'the same bytes again; no regeneration');
    assert.equal(connection.frames.filter((f) => f.type === 'fail').length, 0);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a 409 drops the result without a retry or a fail; a 400 drops it and sends fail{upload_failed, retryable:false}', async () => {
    const { studio, start } = await scenario();
    studio.onUpload = (record) =>
      record.jobId === 'stale-1' ? { status: 409, body: { error: 'stale_attempt', message: 'not claimed by this worker' } } : { status: 400, body: { error: 'bad_request', message: 'no such ext' } };
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'stale-1', kind: 'image', attempt: 1 }));
    await daemon.waitForLog((l) => l.op === 'upload' && l.jobId === 'stale-1' && l.level === 'warn', 'the 409 warning');
    await outboxEmpty(daemon.dir);

    connection.send(offerFrame({ jobId: 'bad-1', kind: 'image', attempt: 5 }));
    const fail = await connection.jobFrame('fail', 'bad-1');
    assert.equal(fail.code, 'upload_failed');
    assert.equal(fail.retryable, false);
    assert.equal(fail.attempt, 5);
    assert.match(fail.error, /400/);
    await outboxEmpty(daemon.dir, 'the failure to leave the outbox after failAck');

    assert.equal(studio.uploads.filter((u) => u.jobId === 'stale-1').length, 1, 'no retry after 409');
    assert.equal(studio.uploads.filter((u) => u.jobId === 'bad-1').length, 1, 'no retry after 400');
    assert.equal(connection.frames.filter((f) => f.type === 'fail' && f.jobId === 'stale-1').length, 0, 'no fail after 409');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('rejects busy while a job runs and unsupported for an engine it does not have (never running it)', async () => {
    const { studio, start } = await scenario();
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'slow-1', delayMs: 1500 }));
    await connection.jobFrame('accept', 'slow-1');
    connection.send(offerFrame({ jobId: 'second-1', attempt: 2 }));
    const busy = await connection.jobFrame('reject', 'second-1');
    assert.equal(busy.code, 'busy');
    assert.equal(busy.attempt, 2);
    await connection.jobFrame('completeJson', 'slow-1');

    connection.send(offerFrame({ jobId: 'sd-1', kind: 'image', engine: 'sd-cpp', attempt: 1 }));
    const unsupported = await connection.jobFrame('reject', 'sd-1');
    assert.equal(unsupported.code, 'unsupported');
    assert.equal(unsupported.attempt, 1);
    assert.match(unsupported.reason, /sd-cpp/);
    // The gate is free again: the next offer is accepted, and sd-1 never ran anywhere.
    connection.send(offerFrame({ jobId: 'after-1' }));
    await connection.jobFrame('completeJson', 'after-1');
    assert.equal(connection.frames.filter((f) => f.jobId === 'sd-1' && f.type !== 'reject').length, 0);
    assert.equal(studio.uploads.filter((u) => u.jobId === 'sd-1').length, 0);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('rejects paused when only_when_idle is on (it cannot tell whether the user is idle)', async () => {
    const { studio, start } = await scenario({ extra: 'only_when_idle = true' });
    const daemon = start();
    const connection = await studio.ready(0);
    const beat = await connection.frame((f) => f.type === 'heartbeat', 'a heartbeat');
    assert.equal(beat.capabilities.onlyWhenIdle, true);
    connection.send(offerFrame({ jobId: 'idle-1', attempt: 1 }));
    const reject = await connection.jobFrame('reject', 'idle-1');
    assert.equal(reject.code, 'paused');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('sends throttled progress frames with the attempt, and cancel stops a job with fail{cancelled}', async () => {
    const { studio, start } = await scenario();
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'prog-1', attempt: 2, delayMs: 1200 }));
    const accepted = await connection.jobFrame('accept', 'prog-1');
    const acceptedAt = performance.now();
    const done = await connection.jobFrame('completeJson', 'prog-1');
    const elapsed = performance.now() - acceptedAt;
    const progress = connection.frames.filter((f) => f.type === 'progress' && f.jobId === 'prog-1');
    assert.ok(progress.length >= 2, `progress frames arrive (${progress.length})`);
    assert.ok(progress.length <= Math.ceil(elapsed / 500) + 1, `at most 2 per second (${progress.length} in ${Math.round(elapsed)} ms)`);
    assert.ok(progress.every((f) => f.attempt === 2 && f.phase === 'generating'));
    assert.ok(connection.frames.indexOf(progress.at(-1)!) < connection.frames.indexOf(done), 'no progress after the result');
    assert.ok(connection.frames.indexOf(accepted) < connection.frames.indexOf(progress[0]!));

    connection.send(offerFrame({ jobId: 'cancel-1', attempt: 1, delayMs: 5000, kind: 'image' }));
    await connection.jobFrame('accept', 'cancel-1');
    connection.send({ type: 'cancel', jobId: 'cancel-1', attempt: 1, reason: 'operator' });
    const fail = await connection.jobFrame('fail', 'cancel-1');
    assert.equal(fail.code, 'cancelled');
    assert.equal(fail.retryable, false);
    assert.equal(fail.attempt, 1);
    await outboxEmpty(daemon.dir);
    assert.equal(studio.uploads.filter((u) => u.jobId === 'cancel-1').length, 0, 'a cancelled job is never uploaded');
    // The gate is free again.
    connection.send(offerFrame({ jobId: 'after-cancel' }));
    await connection.jobFrame('completeJson', 'after-cancel');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('keeps the session through unknown, malformed and binary frames, and drops an outbox entry on stale_attempt', async () => {
    const { studio, start } = await scenario();
    studio.autoAck = false;
    const daemon = start();
    const connection = await studio.ready(0);
    connection.send({ type: 'fromTheFuture', data: 1 });
    connection.send({ type: 'offer', claim: { jobId: 'broken' } });
    connection.send('not json at all');
    connection.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    connection.send({ type: 'error', code: 'internal_error', message: 'something odd' });
    await daemon.waitForLog((l) => /studio reported internal_error/.test(l.msg), 'the internal_error warning');
    await daemon.waitForLog((l) => /unknown frame type "fromTheFuture"/.test(l.msg), 'the unknown frame');
    await daemon.waitForLog((l) => /malformed offer frame ignored/.test(l.msg), 'the malformed frame');
    await daemon.waitForLog((l) => /binary frame/.test(l.msg), 'the binary frame');

    connection.send(offerFrame({ jobId: 'stale-json', attempt: 1 }));
    await connection.jobFrame('completeJson', 'stale-json');
    connection.send({ type: 'error', code: 'stale_attempt', message: 'attempt 1 is over', jobId: 'stale-json', attempt: 1 });
    await outboxEmpty(daemon.dir, 'the stale entry to be dropped');
    const at = connection.frames.length;
    await connection.frame((f) => f.type === 'heartbeat', 'a heartbeat on the same connection', { after: at });
    assert.equal(studio.connections.length, 1);
    assert.equal(connection.closeInfo, undefined);
    assert.equal(connection.frames.filter((f) => f.jobId === 'broken').length, 0);
    assert.equal((await daemon.stop()).code, 0);
  });
});
