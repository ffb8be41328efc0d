import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { offerFrame } from '../helpers/fake-studio.ts';
import { useScenarios } from '../helpers/scenario.ts';
import { Api, EPHEMERAL_PORT } from './harness.ts';

describe('local API: jobs (real daemon, fake studio)', () => {
  const scenario = useScenarios();

  it('a studio image job: running with progress, then done with its log and a ≤384 px PNG thumbnail', async () => {
    const { studio, start } = await scenario({ extra: EPHEMERAL_PORT });
    const daemon = start();
    const api = await Api.of(daemon);
    const connection = await studio.ready(0);
    const prompt = `a very long prompt that is kept in full: ${'mountains and rivers, '.repeat(20)}`;
    connection.send({
      type: 'offer',
      claim: {
        jobId: 'studio-img',
        model: 'synthetic-image',
        task: { kind: 'image', prompt, width: 1024, height: 512, ext: 'png' },
        modelSource: { engine: 'synthetic', cliDefaults: { delayMs: 1_500 } },
        attempt: 2,
      },
    });
    const running = await api.until('/jobs', (json) => json.running.find((job: { jobId: string; progress?: unknown }) => job.jobId === 'studio-img' && job.progress), 'the running job with progress');
    assert.equal(running.status, 'running');
    assert.equal(running.source, 'studio');
    assert.equal(running.kind, 'image');
    assert.equal(running.engine, 'synthetic');
    assert.equal(running.model, 'synthetic-image');
    assert.equal(running.attempt, 2);
    assert.equal(running.prompt, prompt);
    assert.equal(running.hasThumbnail, false);
    assert.equal(typeof running.progress.phase, 'string');

    const done = await api.until('/jobs', (json) => json.recent.find((job: { jobId: string; hasThumbnail: boolean }) => job.jobId === 'studio-img' && job.hasThumbnail), 'the finished job with a thumbnail');
    assert.equal(done.status, 'done');
    assert.ok(Date.parse(done.finishedAt) >= Date.parse(done.startedAt));
    const record = (await api.get('/jobs/studio-img')).json;
    assert.equal(record.jobId, 'studio-img');
    assert.ok(record.log.lines.some((line: { msg: string }) => line.msg === 'job started'));
    assert.ok(record.log.lines.some((line: { msg: string }) => line.msg === 'job finished'));
    const log = (await api.get('/jobs/studio-img/log')).json;
    assert.equal(log.dropped, 0);
    assert.ok(log.lines.every((line: { ts: string; level: string; module: string; msg: string }) => line.ts && line.level && line.module && typeof line.msg === 'string'));

    const thumbnail = await api.get('/jobs/studio-img/thumbnail');
    assert.equal(thumbnail.status, 200);
    assert.equal(thumbnail.headers['content-type'], 'image/png');
    const meta = await sharp(thumbnail.body).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 384, 'the long side is 384');
    assert.equal(meta.height, 192, 'the aspect ratio is kept');

    // An llm job has no thumbnail; unknown jobs are 404 unknown_job.
    connection.send(offerFrame({ jobId: 'studio-llm' }));
    await api.until('/jobs', (json) => json.recent.find((job: { jobId: string }) => job.jobId === 'studio-llm'), 'the llm job');
    const none = await api.get('/jobs/studio-llm/thumbnail');
    assert.equal(none.status, 404);
    assert.equal(none.json.error, 'no_thumbnail');
    assert.equal((await api.get('/jobs/nope')).json.error, 'unknown_job');
    assert.equal((await api.get('/jobs/nope/log')).status, 404);
    assert.equal((await api.get('/jobs/nope/thumbnail')).json.error, 'unknown_job');
    const list = (await api.get('/jobs')).json;
    assert.deepEqual(list.recent.map((job: { jobId: string }) => job.jobId).slice(0, 2), ['studio-llm', 'studio-img'], 'newest first');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a local image job is listed with source "local", its log and a thumbnail; cancelled and failed studio jobs say why', async () => {
    const { studio, start } = await scenario({ extra: EPHEMERAL_PORT });
    const daemon = start();
    const api = await Api.of(daemon);
    const connection = await studio.ready(0);
    const generated = await api.post('/v1/images/generations', { model: 'synthetic-image', prompt: 'a local lighthouse', size: '512x768' });
    assert.equal(generated.status, 200, generated.text);
    const local = await api.until('/jobs', (json) => json.recent.find((job: { source: string; hasThumbnail: boolean }) => job.source === 'local' && job.hasThumbnail), 'the local job with a thumbnail');
    assert.equal(local.kind, 'image');
    assert.equal(local.prompt, 'a local lighthouse');
    assert.equal(local.status, 'done');
    assert.match(local.jobId, /^local-[0-9a-f]+$/);
    const log = (await api.get(`/jobs/${local.jobId}/log`)).json;
    assert.ok(log.lines.some((line: { msg: string }) => line.msg === 'job started'));
    assert.ok(log.lines.some((line: { msg: string }) => line.msg === 'job finished'));
    const meta = await sharp((await api.get(`/jobs/${local.jobId}/thumbnail`)).body).metadata();
    assert.deepEqual([meta.width, meta.height], [256, 384]);

    // The studio cancels a running job: listed as cancelled with the reason.
    connection.send(offerFrame({ jobId: 'to-cancel', delayMs: 30_000 }));
    await api.until('/jobs', (json) => json.running.find((job: { jobId: string }) => job.jobId === 'to-cancel'), 'the job running');
    connection.send({ type: 'cancel', jobId: 'to-cancel', attempt: 1, reason: 'user gave up' });
    const cancelled = await api.until('/jobs', (json) => json.recent.find((job: { jobId: string }) => job.jobId === 'to-cancel'), 'the cancelled job');
    assert.equal(cancelled.status, 'cancelled');
    assert.match(cancelled.reason, /cancelled: cancelled by studio: user gave up/);

    // A job whose model file cannot be fetched (plain http to a remote host is refused): failed, with the reason.
    connection.send({
      type: 'offer',
      claim: {
        jobId: 'will-fail',
        model: 'needs-a-file',
        task: { kind: 'llm', messages: [{ role: 'user', content: 'x' }] },
        modelSource: { engine: 'synthetic', files: [{ role: 'model', url: 'http://example.invalid/m.bin', filename: 'm.bin' }] },
        attempt: 1,
      },
    });
    const failed = await api.until('/jobs', (json) => json.recent.find((job: { jobId: string }) => job.jobId === 'will-fail'), 'the failed job');
    assert.equal(failed.status, 'failed');
    assert.match(failed.reason, /^engine_error: .*plain http to a remote host/);
    assert.equal((await daemon.stop()).code, 0);
  });
});
