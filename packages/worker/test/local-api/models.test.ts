import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { modelDirFor } from '../../src/models/index.ts';
import { offerFrame } from '../helpers/fake-studio.ts';
import { useScenarios } from '../helpers/scenario.ts';
import { FileServer, stallAfter, status } from '../models/file-server.ts';
import { Api, EPHEMERAL_PORT } from './harness.ts';
import { parseExposition } from './prometheus-parser.ts';

/** The model files come from a plain-http loopback server, which a worker refuses unless told otherwise. */
const LOOPBACK_MIRROR = `${EPHEMERAL_PORT}\nallow_loopback_http = true`;

const MiB = 1024 * 1024;

describe('local API: models (real daemon, local HTTP file server)', () => {
  const scenario = useScenarios();
  let files: FileServer;
  before(async () => {
    files = await FileServer.start(3 * MiB);
  });
  after(() => files.close());

  it('add, download (progress while it runs, 409 meanwhile), ready with bytes on disk, delete', async () => {
    const { config, start } = await scenario({ approved: false, extra: LOOPBACK_MIRROR });
    const daemon = start();
    const api = await Api.of(daemon);
    const model = {
      id: 'tiny/llm:q4',
      kind: 'llm',
      displayName: 'Tiny LLM',
      vramGbEstimate: 1.5,
      source: { engine: 'synthetic', files: [{ role: 'model', url: `${files.url('/files/tiny.bin')}?sig=SECRET-signature`, filename: 'tiny.bin', approxBytes: files.content.length, sha256: files.sha256 }] },
    };
    const added = await api.post('/models', model);
    assert.equal(added.status, 201, added.text);
    assert.equal(added.json.id, model.id);
    assert.equal(added.json.origin, 'local');
    assert.equal(added.json.ready, false);
    assert.equal(added.json.bytesOnDisk, 0);
    assert.equal(added.json.files[0].url, `${files.url('/files/tiny.bin')}?…`, 'download URLs are shown without their query');

    // The first request sends a third of the file and then stalls: the download stays in progress.
    files.script(stallAfter(MiB));
    const id = encodeURIComponent(model.id);
    const startedAt = files.requests.length;
    const download = await api.post(`/models/${id}/download`);
    assert.equal(download.status, 202, download.text);
    // The provisioner throttles its progress reports (the newest wins), so only "some bytes" is certain.
    const progress = await api.until('/models', (json) => json.models.find((m: { id: string; download?: { bytesDone: number } }) => m.id === model.id && (m.download?.bytesDone ?? 0) > 0)?.download, 'download progress');
    assert.equal(progress.state, 'downloading');
    assert.ok(progress.bytesDone <= MiB);
    assert.equal(progress.bytesTotal, files.content.length);
    const again = await api.post(`/models/${id}/download`);
    assert.equal(again.status, 409);
    assert.equal(again.json.error, 'already_downloading');

    // The connection drops; the download resumes where it was and completes.
    files.dropConnections();
    const ready = await api.until('/models', (json) => json.models.find((m: { id: string; ready: boolean }) => m.id === model.id && m.ready), 'the model ready', 20_000);
    assert.equal(ready.download, undefined, 'no download state once it succeeded');
    assert.equal(ready.bytesOnDisk, files.content.length);
    assert.equal(ready.displayName, 'Tiny LLM');
    assert.equal(ready.vramGbEstimate, 1.5);
    assert.ok(files.requests.slice(startedAt).some((request) => request.range === `bytes=${MiB}-`), 'resumed with a Range request');
    const metrics = parseExposition((await api.get('/metrics')).text);
    assert.equal(metrics.value('studio_worker_download_bytes_total'), files.content.length, 'every byte received is counted once');

    // Deleted: files gone, entry gone, a second delete is 404.
    const stored = join(modelDirFor(join(config.dir, 'models'), model.id), 'tiny.bin');
    await access(stored);
    const removed = await api.call('DELETE', `/models/${id}`);
    assert.equal(removed.status, 200, removed.text);
    await assert.rejects(access(stored));
    assert.equal((await api.get('/models')).json.models.some((m: { id: string }) => m.id === model.id), false);
    const gone = await api.call('DELETE', `/models/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error, 'unknown_model');
    assert.equal((await api.post(`/models/${id}/download`)).json.error, 'unknown_model');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a failed download is shown with its error; a model a running job uses cannot be deleted; bad models are refused', async () => {
    const { studio, start } = await scenario({ extra: LOOPBACK_MIRROR });
    const daemon = start();
    const api = await Api.of(daemon);
    const connection = await studio.ready(0);

    await api.post('/models', { id: 'missing', kind: 'image', source: { engine: 'synthetic', files: [{ role: 'model', url: files.url('/files/missing.bin'), filename: 'missing.bin' }] } });
    files.script(status(404));
    assert.equal((await api.post('/models/missing/download')).status, 202);
    const failed = await api.until('/models', (json) => json.models.find((m: { id: string; download?: { state: string } }) => m.id === 'missing' && m.download?.state === 'failed')?.download, 'the failed download');
    assert.match(failed.error, /404/);

    // A studio job on a model: the catalogue learns the model from the offer; deleting it waits for the job.
    const offer = offerFrame({ jobId: 'uses-model', delayMs: 30_000 });
    offer.claim.model = 'studio-model';
    connection.send(offer);
    await connection.jobFrame('accept', 'uses-model');
    const listed = await api.until('/models', (json) => json.models.find((m: { id: string }) => m.id === 'studio-model'), 'the offered model in the catalogue');
    assert.equal(listed.origin, 'studio');
    assert.equal(listed.ready, true, 'a model without files is ready');
    const inUse = await api.call('DELETE', '/models/studio-model');
    assert.equal(inUse.status, 409);
    assert.equal(inUse.json.error, 'model_in_use');
    connection.send({ type: 'cancel', jobId: 'uses-model', attempt: 1 });
    await connection.jobFrame('fail', 'uses-model');
    await api.until('/jobs', (json) => (json.running.length === 0 ? true : undefined), 'the job gone');
    assert.equal((await api.call('DELETE', '/models/studio-model')).status, 200);

    const noFiles = await api.post('/models', { id: 'server-held', kind: 'image', source: { engine: 'comfyui' } });
    assert.equal(noFiles.status, 201);
    assert.equal((await api.post('/models/server-held/download')).json.error, 'no_files');
    const badKind = await api.post('/models', { id: 'x', kind: 'painting', source: { engine: 'synthetic' } });
    assert.equal(badKind.status, 400);
    assert.equal(badKind.json.error, 'invalid_model');
    assert.match(badKind.json.message, /kind/);
    const badName = await api.post('/models', { id: 'y', kind: 'image', source: { engine: 'synthetic', files: [{ role: 'model', url: files.url(), filename: '../escape.bin' }] } });
    assert.equal(badName.status, 400);
    assert.match(badName.json.message, /source\.files\.0\.filename: must be a plain file name/);
    assert.equal((await daemon.stop()).code, 0);
  });
});
