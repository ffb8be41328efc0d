// What an operator sets up once serves every pool (issue 12, pools), under workerd: an API token
// made through the Worker is made in `default` and its record (hash, never the token) copied into
// every other pool, so a read/submit token works on a `gpu.job-…`; revoking it revokes it
// everywhere. A webhook is made once with one id and secret, copied the same way, so jobs of every
// pool are delivered to it, signed with that one secret; its deliveries are listed from the pools
// that made them, merged; removing it removes it everywhere.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { CreatedToken, CreatedWebhook, JobEvent, JobView, TokenView, WebhookDeliveryView, WebhookView } from '@studio-worker/protocol';
import { LoopbackHttp, readBody } from '../../../packages/worker/test/helpers/loopback-http.ts';
import { startApprovedWorkers, startStudioProcess, startWorkerProcess, writeWorkerConfig, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
let studio: StudioProc;
let receiver: LoopbackHttp;
let secret = '';
const received: Array<{ id: string; event: JobEvent; signed: boolean }> = [];
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-pools-shared-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare', env: { STUDIO_POOLS: 'default,gpu' } });
  cleanup.push(() => studio.stop());
  for (const w of await startApprovedWorkers(studio, dir, ['plain'])) cleanup.push(() => w.stop());
  const creds = await studio.api.json<{ workerId: string; authToken: string }>('POST', '/workers?pool=gpu', { label: 'gpu-box' });
  const config = join(dir, 'gpu', 'config.toml');
  await writeWorkerConfig(config, { apiBaseUrl: `${studio.url}/`, ...creds });
  const gpu = startWorkerProcess(config, { name: 'gpu' });
  cleanup.push(() => gpu.stop());
  await waitFor('both workers online', async () => (await studio.api.workers()).filter((w) => w.state === 'online').length === 2);
  receiver = new LoopbackHttp(async (req, res) => {
    const body = await readBody(req);
    const id = String(req.headers['webhook-id']);
    const timestamp = String(req.headers['webhook-timestamp']);
    const expected = `v1,${createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
    received.push({ id, event: JSON.parse(body) as JobEvent, signed: req.headers['webhook-signature'] === expected });
    res.writeHead(204).end();
  });
  await receiver.listen();
  cleanup.push(() => receiver.close());
});

after(async () => {
  for (const stop of cleanup.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

const llm = (content: string, pool?: string) => ({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content }] }, ...(pool ? { pool } : {}) });

/** A call with an API token instead of the admin token. */
function as(token: string, method: string, path: string, body?: unknown): Promise<Response> {
  return studio.api.request(method, path, body, token);
}

async function done(id: string): Promise<JobView> {
  return waitFor(`job ${id} done`, async () => {
    const view = await studio.api.job(id);
    return view.status === 'done' ? view : undefined;
  });
}

it('an API token made through the Worker works in every pool, is listed once, and is revoked everywhere', { timeout: 90_000 }, async () => {
  const reader = await studio.api.json<CreatedToken>('POST', '/tokens', { name: 'dashboards', scope: 'read' });
  const submitter = await studio.api.json<CreatedToken>('POST', '/tokens', { name: 'pipeline', scope: 'submit' });

  // Each pool holds the record; the Worker's list shows each token once.
  for (const pool of ['default', 'gpu']) {
    const ids = (await studio.api.json<{ tokens: TokenView[] }>('GET', `/tokens?pool=${pool}`)).tokens.map((t) => t.id);
    assert.ok(ids.includes(reader.id) && ids.includes(submitter.id), `pool ${pool} holds both tokens: ${ids}`);
  }
  const listed = (await studio.api.json<{ tokens: TokenView[] }>('GET', '/tokens')).tokens;
  assert.deepEqual(listed.map((t) => t.id).sort(), [reader.id, submitter.id].sort(), 'each token listed once');
  assert.ok(listed.every((t) => !('token' in t) && !('tokenHash' in t)), 'the list shows neither tokens nor hashes');

  // The submit token creates and reads its own job in gpu; the read token reads it.
  const made = await as(submitter.token, 'POST', '/jobs', llm('submitted to gpu', 'gpu'));
  assert.equal(made.status, 201, await made.clone().text());
  const job = (await made.json()) as JobView;
  assert.match(job.id, /^gpu\.job-/);
  await done(job.id);
  const own = await as(submitter.token, 'GET', `/jobs/${job.id}`);
  assert.equal(own.status, 200, await own.clone().text());
  const read = await as(reader.token, 'GET', `/jobs/${job.id}`);
  assert.equal(read.status, 200, await read.clone().text());
  assert.equal(((await read.json()) as JobView).status, 'done');
  assert.equal((await as(reader.token, 'GET', '/jobs?pool=gpu')).status, 200);
  // Its use in gpu shows in the merged list.
  const used = (await studio.api.json<{ tokens: TokenView[] }>('GET', '/tokens')).tokens.find((t) => t.id === reader.id);
  assert.ok(used?.lastUsedAt, 'last use (in gpu) is listed');

  // Revoked through the Worker: refused in both pools.
  const revoked = await studio.api.json<TokenView>('POST', `/tokens/${reader.id}/revoke`);
  assert.ok(revoked.revokedAt);
  assert.equal((await as(reader.token, 'GET', `/jobs/${job.id}`)).status, 401, 'revoked in gpu');
  assert.equal((await as(reader.token, 'GET', '/jobs?pool=default')).status, 401, 'revoked in default');
  assert.equal((await as(submitter.token, 'GET', `/jobs/${job.id}`)).status, 200, 'the other token still works');
  const unknown = await studio.api.request('POST', '/tokens/tok-000000000000/revoke');
  assert.equal(unknown.status, 404, 'revoking a token no pool has is 404');
});

it('a copy a pool refuses is undone everywhere: 502 pool_copy_failed naming the pool, the new token revoked', { timeout: 60_000 }, async () => {
  // An admin token made in default only (?pool=): gpu does not know it, so it refuses the copy.
  const localAdmin = await studio.api.json<CreatedToken>('POST', '/tokens?pool=default', { name: 'default-only admin', scope: 'admin' });
  const answer = await as(localAdmin.token, 'POST', '/tokens', { name: 'half made', scope: 'read' });
  assert.equal(answer.status, 502, await answer.clone().text());
  const body = (await answer.json()) as { error: string; message: string };
  assert.equal(body.error, 'pool_copy_failed');
  assert.match(body.message, /pool "gpu" refused the copy \(401/);
  const made = (await studio.api.json<{ tokens: TokenView[] }>('GET', '/tokens?pool=default')).tokens.find((t) => t.name === 'half made');
  assert.ok(made?.revokedAt, 'the token made in default is revoked');
  const webhook = await as(localAdmin.token, 'POST', '/webhooks', { url: `${receiver.url}/never` });
  assert.equal(webhook.status, 502);
  assert.equal((await studio.api.json<{ webhooks: WebhookView[] }>('GET', '/webhooks')).webhooks.length, 0, 'the webhook made in default is removed');
});

it('the admin-only copy route refuses a caller without the admin token and a token id already used', async () => {
  const record = { name: 'x', scope: 'read', tokenHash: 'a'.repeat(64), createdAt: new Date().toISOString() };
  const anonymous = await studio.api.request('PUT', '/admin/tokens/tok-abc?pool=gpu', record, null);
  assert.equal(anonymous.status, 401);
  const reader = await studio.api.json<CreatedToken>('POST', '/tokens', { name: 'second reader', scope: 'read' });
  const clash = await studio.api.request('PUT', `/admin/tokens/${reader.id}?pool=gpu`, record);
  assert.equal(clash.status, 409, await clash.clone().text());
  const again = await studio.api.request('PUT', `/admin/tokens/tok-abc?pool=gpu`, record);
  assert.equal(again.status, 200, await again.clone().text());
  assert.equal((await studio.api.request('PUT', `/admin/tokens/tok-abc?pool=gpu`, record)).status, 200, 'repeating a copy is harmless');
});

it('a webhook made through the Worker hears jobs of every pool, signed with its one secret; deliveries merge; removal is everywhere', { timeout: 90_000 }, async () => {
  const hook = await studio.api.json<CreatedWebhook>('POST', '/webhooks', { url: `${receiver.url}/hook`, events: ['done'] });
  secret = hook.secret;
  const inGpu = (await studio.api.json<{ webhooks: WebhookView[] }>('GET', '/webhooks?pool=gpu')).webhooks;
  assert.deepEqual(inGpu.map((w) => w.id), [hook.id], 'copied into gpu under the same id');

  const [plain] = await studio.api.createJobs([llm('hooked in default')]);
  const [pooled] = await studio.api.createJobs([llm('hooked in gpu', 'gpu')]);
  assert.match(pooled?.id ?? '', /^gpu\.job-/);
  assert.doesNotMatch(plain?.id ?? '.', /\./);
  const mine = new Set([plain?.id, pooled?.id]);
  await waitFor('both jobs delivered', async () => {
    const got = received.filter((r) => mine.has(r.event.jobId));
    return got.length === 2 ? got : undefined;
  });
  const got = received.filter((r) => mine.has(r.event.jobId));
  assert.ok(got.every((r) => r.signed), 'both pools signed with the one secret');
  assert.equal(new Set(got.map((r) => r.id)).size, 2, `two pools, two distinct event ids: ${got.map((r) => r.id)}`);

  const deliveries = await waitFor('both deliveries marked delivered', async () => {
    const list = await studio.api.json<WebhookDeliveryView[]>('GET', `/webhooks/${hook.id}/deliveries`);
    return list.filter((d) => d.status === 'delivered').length === 2 ? list : undefined;
  });
  assert.deepEqual(deliveries.map((d) => d.jobId).sort(), [plain?.id, pooled?.id].sort());
  const listed = (await studio.api.json<{ webhooks: WebhookView[] }>('GET', '/webhooks')).webhooks;
  assert.equal(listed.length, 1, 'listed once');
  assert.equal(listed[0]?.delivered, 2, "the pools' delivery counts summed");

  const removed = await studio.api.request('DELETE', `/webhooks/${hook.id}`);
  assert.equal(removed.status, 200, await removed.clone().text());
  for (const pool of ['default', 'gpu']) {
    assert.deepEqual((await studio.api.json<{ webhooks: WebhookView[] }>('GET', `/webhooks?pool=${pool}`)).webhooks, [], `removed in ${pool}`);
  }
  assert.equal((await studio.api.request('DELETE', `/webhooks/${hook.id}`)).status, 404, 'a second removal finds it nowhere');
});
