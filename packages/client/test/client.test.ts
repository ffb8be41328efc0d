// The client against a real in-process studio behind a faulty loopback proxy: answers lost after the
// studio acted, 503s and refused connections are retried with backoff, and a retried submit never
// makes a second job (its idempotency key is resent unchanged).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { startStudio, type RunningStudio } from '@studio-worker/studio/node';
import { LoopbackHttp, readBody } from '../../worker/test/helpers/loopback-http.ts';
import { StudioApiError, StudioClient } from '../src/index.ts';

const TOKEN = 'client-test-token';
let dir: string;
let studio: RunningStudio;
let proxy: LoopbackHttp;
/** What the proxy does with the next requests, one fault per request, then plain forwarding. */
const faults: Array<'lose-answer' | '503' | 'drop'> = [];
const seen: Array<{ method: string; path: string; key: string | undefined }> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'client-'));
  studio = await startStudio({ dataDir: dir, port: 0, host: '127.0.0.1', adminToken: TOKEN, log: silentLogger });
  const target = new URL(studio.url);
  proxy = new LoopbackHttp(async (req, res) => {
    const body = await readBody(req);
    seen.push({ method: req.method ?? '', path: req.url ?? '', key: (req.headers['idempotency-key'] as string | undefined) ?? (body.includes('"key"') ? JSON.parse(body).jobs?.[0]?.key : undefined) });
    const fault = faults.shift();
    if (fault === 'drop') return req.socket.destroy();
    if (fault === '503') {
      res.writeHead(503, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: 'unavailable', message: 'try later' }));
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      // The studio acted on the request; the client never hears of it.
      if (fault === 'lose-answer') return answer.resume().on('end', () => req.socket.destroy());
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.end(body);
  });
  await proxy.listen();
});

after(async () => {
  await proxy.close();
  await studio.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new StudioClient({ url: proxy.url, token: TOKEN, baseDelayMs: 5, maxDelayMs: 20 });
const job = (prompt: string) => ({ model: 'synthetic-image', task: { kind: 'image' as const, prompt } });

describe('StudioClient retries', () => {
  it('a submit whose answer was lost is retried with the same key and makes one job', async () => {
    seen.length = 0;
    faults.push('lose-answer', 'drop', '503');
    const { job: made, replayed } = await client().createJob(job('lost answer'));
    assert.equal(replayed, true, 'the answer that came through was the replay of the first, acted-on request');
    assert.equal(seen.length, 4);
    assert.equal(new Set(seen.map((s) => s.key)).size, 1, 'every try carried the same idempotency key');
    assert.match(seen[0]?.key ?? '', /^auto-/);
    const all = studio.core.jobs.list({ limit: 50 }).jobs.filter((j) => j.prompt === 'lost answer');
    assert.deepEqual(all.map((j) => j.id), [made.id]);
  });

  it('batches get a key per entry, so a lost batch answer makes nothing twice', async () => {
    faults.push('lose-answer');
    const answer = await client().createJobs([job('b1'), job('b2'), { ...job('b3'), key: 'mine' }]);
    assert.equal(answer.created, 0, 'the retry found all three jobs made');
    assert.equal(studio.core.jobs.list({ limit: 50 }).jobs.filter((j) => /^b\d$/.test(j.prompt)).length, 3);
  });

  it('a 4xx is not retried and comes back as a StudioApiError with the studio code and message', async () => {
    seen.length = 0;
    await assert.rejects(client().createJob({ model: 'no-such-model', task: { kind: 'image', prompt: 'x' } }), (error: unknown) => {
      assert.ok(error instanceof StudioApiError);
      assert.equal(error.status, 400);
      assert.equal(error.code, 'unknown_model');
      return true;
    });
    assert.equal(seen.length, 1);
  });

  it('gives up after its retries with a message naming the studio', async () => {
    const down = new StudioClient({ url: 'http://127.0.0.1:1', token: TOKEN, retries: 2, baseDelayMs: 1 });
    const retries: number[] = [];
    const withHook = new StudioClient({ url: 'http://127.0.0.1:1', token: TOKEN, retries: 2, baseDelayMs: 1, onRetry: (r) => retries.push(r.attempt) });
    await assert.rejects(down.health(), /did not answer after 3 tries/);
    await assert.rejects(withHook.health(), (e: unknown) => (e as StudioApiError).code === 'unreachable');
    assert.deepEqual(retries, [1, 2]);
  });

  it('createWorker provisions an approved worker (POST /workers) and answers its token once', async () => {
    const made = await client().createWorker('provisioned by a script');
    assert.match(made.workerId, /^w-/);
    assert.match(made.authToken, /^[0-9a-f]{64}$/);
    const listed = (await client().workers()).find((w) => w.id === made.workerId);
    assert.equal(listed?.label, 'provisioned by a script');
  });
});
