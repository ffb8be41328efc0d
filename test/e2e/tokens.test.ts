// Scoped API tokens from outside, on both studio hosts (test/helpers/hosts.ts): created with the
// `studio tokens` CLI against a real studio process, then used over plain HTTP. Each scope can do
// what it lists and gets a clear 403 (or, for a job it did not make, a 404) for the rest; revoked
// tokens stop at once; the bootstrap admin token keeps working; the database holds hashes only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { TokenView } from '@studio-worker/protocol';
import { forEachHost, studioDatabaseFiles } from '../helpers/hosts.ts';
import { runStudioCli, startStudioProcess, type StudioProc } from '../helpers/processes.ts';

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-tokens-'));
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host });
  });

  after(async () => {
    await studio?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (args: string[]) => runStudioCli(studio, args);

  async function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await studio.api.request(method, path, body, token);
    return { status: res.status, json: await res.json() };
  }

  async function createToken(scope: string): Promise<string> {
    const made = await cli(['tokens', 'create', '--scope', scope, '--name', `${scope} script`]);
    assert.equal(made.code, 0, made.output);
    const token = made.output.match(/^(sst_[0-9a-f]+)$/m)?.[1];
    assert.ok(token, made.output);
    assert.match(made.output, /shown only this once/);
    return token;
  }

  /** Revoke the live read token with `studio tokens revoke` (its id found in `studio tokens list`). */
  async function revokeTheReadToken(): Promise<void> {
    const listed = JSON.parse((await cli(['tokens', 'list', '--json'])).output.replace(/^[^[]*/, '')) as TokenView[];
    const id = listed.find((t) => t.scope === 'read' && !t.revokedAt)?.id;
    assert.ok(id);
    assert.equal((await cli(['tokens', 'revoke', id])).code, 0);
  }

  /**
   * Opens the dashboard's realtime feed like a browser does (token as the second subprotocol), with a
   * raw `ws` client so a refusal's HTTP status and JSON body are seen. Resolves with the open socket
   * after the hello, or with the refusal.
   */
  function openFeed(token: string): Promise<{ ws: WebSocket; messages: string[] } | { status: number; body: { error: string; message: string } }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${studio.url.replace('http', 'ws')}/graphics/api/realtime`, ['studio-dashboard', `bearer.${token}`]);
      const messages: string[] = [];
      ws.on('message', (data) => {
        messages.push(data.toString());
        if (messages.length === 1) resolve({ ws, messages });
      });
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      ws.on('error', (error) => {
        if (!error.message.includes('Unexpected server response')) reject(error);
      });
    });
  }

  /**
   * The same feed over a raw socket, as bytes: the upgrade request by hand, then the server's frames
   * (unmasked: FIN/opcode byte, 7-bit length or 126 + 16-bit), each with the time it came in. What the
   * promptness test needs and `ws` does not show: when the close frame arrives (`ws` emits 'close'
   * only once the TCP connection is gone, and workerd ends that about 10 s after the handshake).
   */
  async function openRawFeed(token: string): Promise<{ frames: Array<{ opcode: number; payload: Buffer; at: number }>; next: () => Promise<void>; destroy: () => void }> {
    const url = new URL(studio.url);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    await once(socket, 'connect');
    socket.write(
      `GET /graphics/api/realtime HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Protocol: studio-dashboard, bearer.${token}\r\n\r\n`,
    );
    const frames: Array<{ opcode: number; payload: Buffer; at: number }> = [];
    let pending = Buffer.alloc(0);
    let upgraded = false;
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      const at = performance.now();
      pending = Buffer.concat([pending, chunk]);
      if (!upgraded) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        assert.match(pending.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
        upgraded = true;
        pending = pending.subarray(end + 4);
      }
      for (;;) {
        if (pending.length < 2) break;
        let length = (pending[1] as number) & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (pending.length < 4) break;
          length = pending.readUInt16BE(2);
          offset = 4;
        }
        assert.ok(length !== 127, 'a feed frame over 64 KiB in this test');
        if (pending.length < offset + length) break;
        frames.push({ opcode: (pending[0] as number) & 0x0f, payload: pending.subarray(offset, offset + length), at });
        pending = pending.subarray(offset + length);
      }
      wake?.();
    });
    const next = () => new Promise<void>((resolve) => (wake = resolve));
    while (frames.length === 0) await next();
    return { frames, next, destroy: () => socket.destroy() };
  }

  const job = (prompt: string) => ({ model: 'synthetic-image', task: { kind: 'image', prompt } });

  describe('scoped API tokens', () => {
    it('submit: makes jobs, reads and cancels its own, nothing else', async () => {
      const submit = await createToken('submit');
      const mine = await call(submit, 'POST', '/jobs', job('mine'));
      assert.equal(mine.status, 201);
      const theirs = await studio.api.json<{ id: string }>('POST', '/jobs', job('admin made this'));

      assert.equal((await call(submit, 'GET', `/jobs/${mine.json.id}`)).status, 200);
      const other = await call(submit, 'GET', `/jobs/${theirs.id}`);
      assert.deepEqual([other.status, other.json.error], [404, 'unknown_job'], 'another caller’s job does not exist for this token');
      assert.equal((await call(submit, 'POST', `/jobs/${theirs.id}/cancel`)).status, 404);
      const lookup = await call(submit, 'POST', '/jobs/lookup', { ids: [mine.json.id, theirs.id] });
      assert.deepEqual(lookup.json.jobs.map((j: { id: string }) => j.id), [mine.json.id]);
      assert.deepEqual(lookup.json.missing, [theirs.id]);

      const list = await call(submit, 'GET', '/jobs');
      assert.equal(list.status, 403);
      assert.equal(list.json.error, 'insufficient_scope');
      assert.match(list.json.message, /"submit" scope, which does not allow GET \/jobs/);
      assert.equal((await call(submit, 'GET', '/workers')).status, 403);
      assert.equal((await call(submit, 'POST', '/tokens', { name: 'x', scope: 'admin' })).status, 403, 'no escalation');
      assert.equal((await call(submit, 'POST', `/jobs/${mine.json.id}/cancel`)).json.status, 'cancelled');

      // Its idempotency keys are its own: the admin's key "k" and this token's key "k" are two jobs.
      const a = await studio.api.request('POST', '/jobs', job('k'), studio.api.token).then(async (r) => r.json() as Promise<{ id: string }>);
      const keyed = async (token: string) => (await fetch(`${studio.url}/graphics/api/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': 'k' }, body: JSON.stringify(job('k')) })).json() as Promise<{ id: string }>;
      const adminKeyed = await keyed(studio.api.token);
      const submitKeyed = await keyed(submit);
      assert.notEqual(adminKeyed.id, submitKeyed.id);
      assert.notEqual(a.id, adminKeyed.id);
    });

    it('read: looks at everything, changes nothing', async () => {
      const read = await createToken('read');
      assert.equal((await call(read, 'GET', '/jobs')).status, 200);
      assert.equal((await call(read, 'GET', '/workers')).status, 200);
      assert.equal((await call(read, 'GET', '/models')).status, 200);
      const post = await call(read, 'POST', '/jobs', job('nope'));
      assert.deepEqual([post.status, post.json.error], [403, 'insufficient_scope']);
      assert.equal((await call(read, 'POST', '/models/synthetic-image/disable')).status, 403);
    });

    it('list shows last use and no secrets; revoke stops a token at once; the bootstrap admin token keeps working; only hashes are stored', async () => {
      const admin = await createToken('admin');
      assert.equal((await call(admin, 'POST', '/jobs', job('by admin token'))).status, 201);
      const listed = await cli(['tokens', 'list', '--json']);
      const tokens = JSON.parse(listed.output.slice(listed.output.indexOf('['))) as TokenView[];
      const entry = tokens.find((t) => t.scope === 'admin');
      assert.ok(entry?.lastUsedAt, 'last use recorded');
      assert.ok(!listed.output.includes(admin), 'the token itself is never listed');
      assert.equal((await cli(['tokens', 'revoke', entry.id])).code, 0);
      const refused = await call(admin, 'GET', '/jobs');
      assert.equal(refused.status, 401);
      assert.equal((await studio.api.request('GET', '/jobs')).status, 200, 'bootstrap admin token');

      const files = studioDatabaseFiles(host, join(dir, 'studio'));
      assert.ok(files.length > 0, 'the studio database files were found');
      const bytes = files.map((f) => readFileSync(f).toString('latin1')).join('');
      assert.ok(!bytes.includes(admin), 'no raw token in the database files');
    });

    it('the realtime feed: admin and read tokens open it and get events; submit and revoked tokens are refused', async () => {
      const read = await createToken('read');
      const admin = await createToken('admin');
      const submit = await createToken('submit');
      const feeds = [await openFeed(read), await openFeed(admin), await openFeed(studio.api.token)];
      for (const feed of feeds) assert.ok('ws' in feed, `feed refused: ${JSON.stringify(feed)}`);
      try {
        const made = await studio.api.json<{ id: string }>('POST', '/jobs', job('seen on the feed'));
        // Each open feed carries the new job (events are flushed every 100 ms; wait for them, not a time).
        for (const feed of feeds) {
          if (!('ws' in feed)) continue;
          while (!feed.messages.some((m) => m.includes(made.id))) await new Promise((resolve) => feed.ws.once('message', resolve));
        }
      } finally {
        for (const feed of feeds) if ('ws' in feed) feed.ws.close();
      }

      const bySubmit = await openFeed(submit);
      assert.ok('status' in bySubmit);
      assert.equal(bySubmit.status, 403);
      assert.equal(bySubmit.body.error, 'insufficient_scope');
      assert.match(bySubmit.body.message, /"submit" scope/);

      await revokeTheReadToken();
      const revoked = await openFeed(read);
      assert.ok('status' in revoked);
      assert.deepEqual([revoked.status, revoked.body.error], [401, 'auth_failed']);
      const wrong = await openFeed('sst_not-a-token');
      assert.ok('status' in wrong && wrong.status === 401);
    });

    /** Open a read token's feed, revoke the token, make a job: what reaches the feed first (its close, or the job's event). */
    async function revokeUnderAnOpenFeed(): Promise<{ first: { code: number; reason: string } | 'leaked' }> {
      const read = await createToken('read');
      const feed = await openFeed(read);
      assert.ok('ws' in feed, JSON.stringify(feed));
      const closed = new Promise<{ code: number; reason: string }>((resolve) => feed.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await revokeTheReadToken();
      const made = await studio.api.json<{ id: string }>('POST', '/jobs', job('after the revoke'));
      // Whichever comes first: the close, or the new job's event (which must not come).
      const leaked = new Promise<'leaked'>((resolve) => {
        const check = () => (feed.messages.some((m) => m.includes(made.id)) ? resolve('leaked') : undefined);
        check();
        feed.ws.on('message', check);
      });
      return { first: await Promise.race([closed, leaked]) };
    }

    it('a feed whose token is revoked while it is open gets no event after the revoke: it is closed (1008) when the next batch goes out', async () => {
      const { first } = await revokeUnderAnOpenFeed();
      assert.notEqual(first, 'leaked', 'an event reached the feed after its token was revoked');
      assert.deepEqual(first, { code: 1008, reason: 'the token was revoked' });
    });

    // Batches go out every 100 ms, so 5 s is generous. Timed on the wire: the close frame's arrival.
    it('that close reaches the feed promptly: its close frame (1008) within 5 s of the job that revealed it, and no event before it', async () => {
      const read = await createToken('read');
      const feed = await openRawFeed(read);
      try {
        assert.equal(feed.frames[0]?.opcode, 1, 'the hello comes first');
        await revokeTheReadToken();
        const made = await studio.api.json<{ id: string }>('POST', '/jobs', job('after the revoke, raw'));
        const madeAt = performance.now();
        const leaked = () => feed.frames.some((f) => f.opcode === 1 && f.payload.toString().includes(made.id));
        const deadline = madeAt + 5_000;
        while (!feed.frames.some((f) => f.opcode === 8)) {
          assert.ok(!leaked(), 'the job reached the revoked feed');
          const left = deadline - performance.now();
          assert.ok(left > 0, `no close frame within 5 s of the job (${feed.frames.length} frames in all)`);
          await Promise.race([feed.next(), delay(left)]);
        }
        const close = feed.frames.find((f) => f.opcode === 8) as { payload: Buffer; at: number };
        assert.ok(!leaked(), 'the job reached the revoked feed');
        assert.deepEqual([close.payload.readUInt16BE(0), close.payload.subarray(2).toString()], [1008, 'the token was revoked']);
        const ms = close.at - madeAt;
        assert.ok(ms < 5_000, `the close frame came ${Math.round(ms)} ms after the job was made`);
      } finally {
        feed.destroy();
      }
    });
  });
});
