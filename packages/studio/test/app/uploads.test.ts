// Result uploads through the host-agnostic app alone (`app.fetch`, Web streams, results in memory:
// memory-host.ts): every way out of an upload — done, malformed, too large, the client gone
// mid-body, the store refusing, a stale attempt — answers as the embedded host always has and
// leaves nothing staged or stored; and the file part reaches the store while the body still arrives.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { connectWorker, imageJob, makeHarness, send, type Harness } from '../core/harness.ts';
import { memoryApp, type MemoryApp } from './memory-host.ts';

const B = 'upload-boundary-7';
const enc = new TextEncoder();

function multipart(file: Uint8Array, fields: Record<string, string> = { ext: 'png', attempt: '1' }, close = true): Uint8Array {
  const head = Object.entries(fields)
    .map(([name, value]) => `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
    .join('');
  const parts = [enc.encode(`${head}--${B}\r\nContent-Disposition: form-data; name="image"; filename="r.png"\r\nContent-Type: image/png\r\n\r\n`), file, enc.encode(close ? `\r\n--${B}--\r\n` : '')];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A body sent in 16 KiB chunks; `fail` errors the stream once that many bytes went (the client left). */
function body(bytes: Uint8Array, options: { failAt?: number } = {}): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (options.failAt !== undefined && at >= options.failAt) return controller.error(new Error('aborted'));
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + 16 * 1024));
      at += 16 * 1024;
    },
  });
}

let h: Harness;
let m: MemoryApp;
let worker: { workerId: string; authToken: string; connId: string };
let jobId: string;

beforeEach(() => {
  h = makeHarness();
  m = memoryApp(h.core, { maxUploadBytes: 256 * 1024 });
  worker = connectWorker(h);
  jobId = imageJob(h, 'uploaded through app.fetch').id;
  send(h, worker.connId, { type: 'accept', jobId, attempt: 1 });
  assert.equal(h.core.stores.jobs.get(jobId)?.status, 'running');
});

async function upload(stream: ReadableStream<Uint8Array>, token = worker.authToken): Promise<{ status: number; body: { error?: string; message?: string; bytes?: number } }> {
  const request = new Request(`http://studio.test/graphics/api/workers/${worker.workerId}/jobs/${jobId}/complete`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${B}` },
    body: stream,
    duplex: 'half',
  } as RequestInit);
  const res = await m.app.fetch(request);
  return { status: res.status, body: (await res.json()) as { error?: string; message?: string } };
}

function nothingLeft(): void {
  assert.equal(m.results.pending.size, 0, 'nothing staged is left');
  assert.equal(m.results.objects.size, 0, 'nothing was stored');
}

const file = new Uint8Array(100 * 1024).map((_, i) => (i * 13) & 0xff);

describe('result uploads through the app over Web streams', () => {
  it('stores the file, records the store’s key, and serves it whole, by range and by HEAD', async () => {
    const stored = await upload(body(multipart(file)));
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
    assert.equal(stored.body.bytes, file.length);
    assert.equal(m.results.pending.size, 0);
    assert.equal(h.core.stores.jobs.get(jobId)?.status, 'done');
    const admin = h.core.admin.init('app-admin').generated ?? 'app-admin';
    const get = (headers: Record<string, string> = {}, method = 'GET') => m.app.fetch(new Request(`http://studio.test/graphics/api/jobs/${jobId}/result`, { method, headers: { authorization: `Bearer ${admin}`, ...headers } }));
    const whole = await get();
    assert.equal(whole.status, 200);
    assert.deepEqual(new Uint8Array(await whole.arrayBuffer()), file);
    const part = await get({ range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${file.length}`);
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), file.subarray(10, 20));
    const head = await get({}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(file.length));
  });

  it('streams the file part into the store while the body still arrives (never collected first)', { timeout: 5000 }, async () => {
    const bytes = multipart(new Uint8Array(200 * 1024).fill(3));
    const half = 100 * 1024;
    let sent = 0;
    // The second half is sent only once the store holds bytes of the first: an app that collected
    // the file part before handing it over would wait here forever.
    const gated = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= bytes.length) return controller.close();
        if (sent >= half) {
          for (let turns = 0; m.results.received < 32 * 1024; turns++) {
            if (turns > 10_000) return controller.error(new Error('the store never saw the first half'));
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
        controller.enqueue(bytes.slice(sent, sent + 8 * 1024));
        sent += 8 * 1024;
      },
    });
    const stored = await upload(gated);
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
  });

  it('a malformed body (no closing boundary): 400 bad_upload, nothing left', async () => {
    const res = await upload(body(multipart(file, undefined, false)));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'bad_upload');
    assert.match(res.body.message ?? '', /malformed: Unexpected end of form/);
    nothingLeft();
  });

  it('a file over the cap without a declared length: 413 too_large, nothing left', async () => {
    const res = await upload(body(multipart(new Uint8Array(300 * 1024))));
    assert.equal(res.status, 413);
    assert.equal(res.body.error, 'too_large');
    assert.match(res.body.message ?? '', /larger than 262144 bytes/);
    nothingLeft();
  });

  it('the client gone mid-file: 400, nothing left, and the claim still takes the real upload', async () => {
    const res = await upload(body(multipart(file), { failAt: 48 * 1024 }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'bad_upload');
    nothingLeft();
    const stored = await upload(body(multipart(file)));
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
  });

  it('the store refusing mid-file: 500 storage_failed naming its code, nothing left', async () => {
    m.results.failAfterBytes = 40 * 1024;
    const res = await upload(body(multipart(file)));
    assert.equal(res.status, 500);
    assert.equal(res.body.error, 'storage_failed');
    assert.match(res.body.message ?? '', /BUCKET_FULL/);
    nothingLeft();
  });

  it('a claim that ends while its file streams in (a cancel): 409 from the guarded statement, the stored file deleted', { timeout: 5000 }, async () => {
    const bytes = multipart(file);
    let sent = 0;
    let cancelled = false;
    // Halfway through the body the operator cancels the job: the one check before the body passed,
    // so only completeFile's guarded statement can refuse it.
    const racing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= bytes.length) return controller.close();
        if (!cancelled && sent >= bytes.length / 2) {
          assert.ok(h.core.jobs.cancel(jobId).ok);
          cancelled = true;
        }
        controller.enqueue(bytes.slice(sent, sent + 8 * 1024));
        sent += 8 * 1024;
      },
    });
    const refused = await upload(racing);
    assert.ok(cancelled, 'the cancel happened mid-body');
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'stale_attempt');
    assert.match(refused.body.message ?? '', /no longer at attempt 1 .*the result was not stored/);
    assert.equal(h.core.stores.jobs.get(jobId)?.status, 'cancelled');
    nothingLeft();
  });

  it('a stale attempt, a missing or empty file, a bad ext: refused, nothing left', async () => {
    assert.equal((await upload(body(multipart(file, { ext: 'png', attempt: '2' })))).status, 409);
    nothingLeft();
    assert.equal((await upload(body(multipart(new Uint8Array(0))))).body.error, 'empty_file');
    nothingLeft();
    assert.equal((await upload(body(multipart(file, { ext: '../x', attempt: '1' })))).body.error, 'invalid_ext');
    nothingLeft();
    const noFile = enc.encode(`--${B}\r\nContent-Disposition: form-data; name="ext"\r\n\r\npng\r\n--${B}--\r\n`);
    assert.equal((await upload(body(noFile))).body.error, 'missing_file');
    nothingLeft();
    assert.equal((await upload(body(multipart(file)), 'wrong-token')).status, 401);
    nothingLeft();
  });
});
