// The Cloudflare host's result store (src/cloudflare/r2-results.ts) against a real R2 bucket:
// workerd's local R2 under Miniflare 4, reached from Node through Miniflare's binding proxy. The
// bucket is only wrapped to record the calls the store makes (part sizes), never replaced.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { R2Results } from '../src/cloudflare/r2-results.ts';
import type { R2Bucket, R2MultipartUpload } from '../src/cloudflare/types.ts';

const PART = 5 * 1024 * 1024;
let mf: Miniflare;
let bucket: R2Bucket;
const calls: string[] = [];
const crypto = { sha256Hex: (t: string) => createHash('sha256').update(t).digest('hex'), randomHex: (n: number) => Math.random().toString(16).slice(2, 2 + n * 2).padEnd(n * 2, '0') };

before(async () => {
  process.env.WRANGLER_SEND_METRICS = 'false';
  mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response(null) } }', compatibilityDate: '2026-07-01', r2Buckets: ['RESULTS'] });
  const real = (await mf.getR2Bucket('RESULTS')) as unknown as R2Bucket;
  // Record what the store asks of R2; every call goes to the real bucket.
  bucket = {
    head: (key) => real.head(key),
    get: (key, options) => real.get(key, options),
    delete: (keys) => real.delete(keys),
    put: (key, value, options) => {
      calls.push(`put ${(value as Uint8Array).byteLength}`);
      return real.put(key, value, options);
    },
    async createMultipartUpload(key, options) {
      calls.push('create');
      const upload = await real.createMultipartUpload(key, options);
      const wrapped: R2MultipartUpload = {
        get key() {
          return upload.key;
        },
        get uploadId() {
          return upload.uploadId;
        },
        uploadPart: (n, value) => {
          calls.push(`part ${n} ${(value as Uint8Array).byteLength}`);
          return upload.uploadPart(n, value);
        },
        abort: () => {
          calls.push('abort');
          return upload.abort();
        },
        complete: (parts) => {
          calls.push(`complete ${parts.length}`);
          return upload.complete(parts);
        },
      };
      return wrapped;
    },
  };
});

after(async () => {
  await mf.dispose();
});

/** `bytes` as a stream of odd-sized chunks (64 KiB + 7), as a network body arrives. */
function streamOf(bytes: Uint8Array, failAfter?: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (failAfter !== undefined && offset >= failAfter) return controller.error(new Error('client went away'));
      if (offset >= bytes.length) return controller.close();
      const end = Math.min(offset + 65_543, bytes.length);
      controller.enqueue(bytes.slice(offset, end));
      offset = end;
    },
  });
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(i + 65_536, n)));
  return out;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

test('a large result goes up in equal 5 MiB parts (one part in memory at a time) and reads back whole and by range', async () => {
  calls.length = 0;
  const store = new R2Results(bucket, crypto);
  const bytes = randomBytes(2 * PART + 123_457);
  const staged = await store.stage(streamOf(bytes), { jobId: 'gpu.job-1', maxBytes: 64 * PART });
  assert.equal(staged.bytes, bytes.length);
  assert.deepEqual(calls, ['create', `part 1 ${PART}`, `part 2 ${PART}`, 'part 3 123457', 'complete 3']);
  const key = await staged.commit({ jobId: 'gpu.job-1', attempt: 1, ext: 'png' });
  const opened = await store.open(key);
  assert.equal(opened?.size, bytes.length);
  assert.deepEqual(await readAll(await (opened as NonNullable<typeof opened>).stream(0, bytes.length - 1)), bytes);
  // A range across the first part boundary.
  const slice = await readAll(await (opened as NonNullable<typeof opened>).stream(PART - 10, PART + 9));
  assert.deepEqual(slice, bytes.subarray(PART - 10, PART + 10));
  await store.remove(key);
  assert.equal(await store.open(key), undefined);
});

test('a small result is collected and put once', async () => {
  calls.length = 0;
  const store = new R2Results(bucket, crypto);
  const bytes = randomBytes(70_000);
  const staged = await store.stage(streamOf(bytes), { jobId: 'job-2', maxBytes: PART });
  assert.deepEqual(calls, ['put 70000']);
  const key = await staged.commit({ jobId: 'job-2', attempt: 1, ext: 'png' });
  assert.deepEqual(await readAll(await ((await store.open(key)) as NonNullable<Awaited<ReturnType<R2Results['open']>>>).stream(0, 69_999)), bytes);
});

test('an upload whose body fails mid-way leaves nothing behind (the multipart upload is aborted)', async () => {
  calls.length = 0;
  const store = new R2Results(bucket, crypto);
  const bytes = randomBytes(3 * PART);
  await assert.rejects(store.stage(streamOf(bytes, PART + 100_000), { jobId: 'job-3', maxBytes: 64 * PART }), /client went away/);
  assert.deepEqual(calls, ['create', `part 1 ${PART}`, 'abort']);
  const real = (await mf.getR2Bucket('RESULTS')) as unknown as { list(o?: object): Promise<{ objects: Array<{ key: string }> }> };
  assert.deepEqual((await real.list({ prefix: 'results/job-3' })).objects, []);
});

test('a discarded upload is deleted', async () => {
  const store = new R2Results(bucket, crypto);
  const staged = await store.stage(streamOf(randomBytes(1000)), { jobId: 'job-4', maxBytes: PART });
  const real = (await mf.getR2Bucket('RESULTS')) as unknown as { list(o?: object): Promise<{ objects: Array<{ key: string }> }> };
  assert.equal((await real.list({ prefix: 'results/job-4' })).objects.length, 1);
  await staged.discard();
  assert.deepEqual((await real.list({ prefix: 'results/job-4' })).objects, []);
});
