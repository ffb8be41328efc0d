// Job events from outside, on both studio hosts (test/helpers/hosts.ts): a real studio process with
// two real workers, a webhook receiver that fails deliveries on purpose (500s, cut connections, an
// answer lost after it processed the event), and a server-sent events client that disconnects and
// resumes with Last-Event-ID.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CreatedWebhook, JobEvent, JobView, WebhookDeliveryView } from '@studio-worker/protocol';
import { LoopbackHttp, readBody } from '../../packages/worker/test/helpers/loopback-http.ts';
import { forEachHost } from '../helpers/hosts.ts';
import { startApprovedWorkers, startStudioProcess, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  let workers: Proc[] = [];
  let receiver: LoopbackHttp;
  let secret = '';
  /** Every delivery that reached the receiver's handler, in order (a redelivery appears again). */
  const received: Array<{ id: string; body: string; answered: boolean }> = [];
  const tries = new Map<string, number>();
  const badSignatures: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-webhooks-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host, env: { STUDIO_WEBHOOK_RETRY_MS: '20' } });
    workers = await startApprovedWorkers(studio, dir, ['w1', 'w2']);
    receiver = new LoopbackHttp(async (req, res) => {
      const body = await readBody(req);
      const id = String(req.headers['webhook-id']);
      const timestamp = String(req.headers['webhook-timestamp']);
      const expected = `v1,${createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
      if (req.headers['webhook-signature'] !== expected) badSignatures.push(id);
      const n = (tries.get(id) ?? 0) + 1;
      tries.set(id, n);
      const event = JSON.parse(body) as JobEvent;
      // Jobs whose prompt ends in an even digit get the full treatment: 500, a cut connection, then
      // processed but the answer lost (so the studio must send it again), then a 200.
      const faulty = event.job?.prompt.match(/(\d)$/)?.[1] !== undefined && Number(event.job?.prompt.slice(-1)) % 2 === 0;
      if (faulty && n === 1) return void res.writeHead(500).end('not now');
      if (faulty && n === 2) return void req.socket.destroy();
      received.push({ id, body, answered: !(faulty && n === 3) });
      if (faulty && n === 3) return void req.socket.destroy();
      res.writeHead(204).end();
    });
    await receiver.listen();
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await studio?.stop();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('job events for integrations', () => {
    it('webhooks: signed, retried through induced failures, each completion once per event id', async () => {
      const hook = await studio.api.json<CreatedWebhook>('POST', '/webhooks', { url: `${receiver.url}/hook` });
      secret = hook.secret;
      assert.match(secret, /^whsec_/);
      assert.equal((await studio.api.json<{ webhooks: Array<Record<string, unknown>> }>('GET', '/webhooks')).webhooks[0]?.secret, undefined, 'the secret is shown once');
      const refused = await studio.api.request('POST', '/webhooks', { url: 'http://example.com/hook' });
      assert.equal(refused.status, 400);

      const jobs = await studio.api.createJobs(Array.from({ length: 10 }, (_, i) => ({ model: 'synthetic-image', task: { kind: 'image', prompt: `hooked ${i}`, width: 32, height: 32 } })));
      const ids = new Set(jobs.map((j) => j.id));
      await waitFor('every completion delivered', async () => {
        const d = (await studio.api.json<WebhookDeliveryView[]>('GET', `/webhooks/${hook.id}/deliveries`)).filter((x) => ids.has(x.jobId));
        return d.length === 10 && d.every((x) => x.status === 'delivered') ? d : undefined;
      });
      assert.deepEqual(badSignatures, [], 'every delivery carried a valid Standard Webhooks signature');

      const mine = received.filter((r) => ids.has((JSON.parse(r.body) as JobEvent).jobId));
      const byEvent = new Map<string, string[]>();
      for (const r of mine) byEvent.set(r.id, [...(byEvent.get(r.id) ?? []), r.body]);
      assert.equal(byEvent.size, 10, 'one event id per completion');
      const perJob = new Map<string, string>();
      for (const [id, bodies] of byEvent) {
        assert.equal(new Set(bodies).size, 1, `a redelivery of ${id} is the same body`);
        const event = JSON.parse(bodies[0] as string) as JobEvent;
        assert.equal(event.id, id);
        assert.equal(event.type, 'job.done');
        assert.equal(event.job?.status, 'done');
        assert.ok(!perJob.has(event.jobId), `job ${event.jobId} completed under one event id`);
        perJob.set(event.jobId, id);
      }
      assert.deepEqual([...perJob.keys()].sort(), [...ids].sort());
      assert.equal(mine.length, 15, 'the five faulty events arrived twice (their first processed copy lost its answer), the others once');

      const deliveries = await studio.api.json<WebhookDeliveryView[]>('GET', `/webhooks/${hook.id}/deliveries`);
      const attempts = deliveries.filter((d) => ids.has(d.jobId)).map((d) => d.attempts).sort();
      assert.deepEqual(attempts, [1, 1, 1, 1, 1, 4, 4, 4, 4, 4]);
    });

    it('the SSE stream of job endings resumes with Last-Event-ID: no event lost, none repeated', async () => {
      const events: Array<{ seq: number; event: JobEvent }> = [];
      async function read(headers: Record<string, string>, query: string, stopAfter: (n: number) => boolean): Promise<void> {
        const abort = new AbortController();
        const res = await fetch(`${studio.url}/graphics/api/events${query}`, { headers: { authorization: `Bearer ${studio.api.token}`, ...headers }, signal: abort.signal });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
        const decoder = new TextDecoder();
        let buffer = '';
        try {
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            buffer += decoder.decode(chunk, { stream: true });
            let end: number;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const id = frame.match(/^id: (\d+)$/m)?.[1];
              const data = frame.match(/^data: (.*)$/m)?.[1];
              if (id && data) events.push({ seq: Number(id), event: JSON.parse(data) as JobEvent });
              if (stopAfter(events.length)) return abort.abort();
            }
          }
        } catch (error) {
          if (!abort.signal.aborted) throw error;
        }
      }
      const created = await studio.api.createJobs(Array.from({ length: 6 }, (_, i) => ({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: `sse ${i}` }] } })));
      const ids = new Set(created.map((j: JobView) => j.id));
      const doneCount = () => events.filter((e) => ids.has(e.event.jobId) && e.event.status === 'done').length;
      // Disconnect halfway through this test's endings (counted by job id, so it does not depend on
      // how many events the test before it made), then resume.
      await read({}, '?after=0', () => doneCount() >= 3);
      const resumeFrom = events.at(-1)?.seq as number;
      await read({ 'last-event-id': String(resumeFrom) }, '', () => doneCount() === 6);
      const seqs = events.map((e) => e.seq);
      // Event numbers have no gaps, so consecutive numbers across the reconnect mean none lost, none repeated.
      assert.deepEqual(seqs, seqs.map((_, i) => (seqs[0] as number) + i), 'every event once, in order, across the reconnect');
      assert.ok(seqs.indexOf(resumeFrom) < seqs.length - 1, 'the second connection went on after the last event seen');
      for (const id of ids) {
        assert.deepEqual(events.filter((e) => e.event.jobId === id).map((e) => e.event.type), ['job.done'], `job ${id}: one ending`);
      }
      const bad = await studio.api.request('GET', '/events?after=x');
      assert.equal(bad.status, 400);
    });
  });
});
