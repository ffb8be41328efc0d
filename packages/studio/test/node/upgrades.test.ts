// The embedded host runs each upgrade through the shared app (app/sockets.ts checks it, the Node
// sockets port completes it with ws): from outside over raw sockets, the refusals are plain HTTP
// answers with the app's JSON bodies, an admitted worker and dashboard get their sockets, and a
// request that is not an upgrade never reaches a socket.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '@studio-worker/protocol';
import { silentLogger } from '@studio-worker/log';
import { startStudio, type RunningStudio } from '../../src/node/server.ts';
import { parseAnswer, rawRequest } from '../../../../test/helpers/raw-http.ts';

const ADMIN = 'upgrade-admin-token';
let studio: RunningStudio;
let dir: string;
let worker: { workerId: string; authToken: string };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'upgrades-'));
  studio = await startStudio({ dataDir: dir, port: 0, host: '127.0.0.1', adminToken: ADMIN, log: silentLogger });
  worker = studio.core.registration.createApprovedWorker('upgrades', 'box');
});

after(async () => {
  await studio.close();
  rmSync(dir, { recursive: true, force: true });
});

const handshake = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

async function raw(head: string): Promise<{ status: number; body: { error?: string; message?: string }; text: string }> {
  const answer = await rawRequest(studio.port, `${head}\r\nHost: 127.0.0.1\r\n\r\n`);
  const parsed = parseAnswer(answer.bytes);
  const text = parsed.body.toString();
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {
    // a 101 or an empty body
  }
  return { status: parsed.status, body, text };
}

describe('upgrades through the shared app on the embedded host', () => {
  it('an upgrade to a path without a socket: 404 not_found naming the path', async () => {
    const res = await raw(`GET /graphics/api/health HTTP/1.1\r\n${handshake.trimEnd()}`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'not_found');
    assert.match(res.body.message ?? '', /no WebSocket at \/graphics\/api\/health/);
  });

  it('a worker: wrong token 401 auth_failed, no subprotocol 400 bad_upgrade, the right one 101', async () => {
    const path = `/graphics/api/workers/${worker.workerId}/connect`;
    const wrong = await raw(`GET ${path} HTTP/1.1\r\n${handshake}Sec-WebSocket-Protocol: ${SUBPROTOCOL}\r\nAuthorization: Bearer wrong`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'auth_failed');
    const noProtocol = await raw(`GET ${path} HTTP/1.1\r\n${handshake}Authorization: Bearer ${worker.authToken}`);
    assert.equal(noProtocol.status, 400);
    assert.equal(noProtocol.body.error, 'bad_upgrade');
    const ws = new WebSocket(`${studio.url.replace('http', 'ws')}${path}`, SUBPROTOCOL, { headers: { authorization: `Bearer ${worker.authToken}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`answered ${res.statusCode}`)));
    });
    assert.equal(ws.protocol, SUBPROTOCOL);
    ws.close();
  });

  it('the Upgrade header without a handshake (no Connection: upgrade) gets no socket: 400', async () => {
    const res = await raw(`GET /graphics/api/workers/${worker.workerId}/connect HTTP/1.1\r\nUpgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\nAuthorization: Bearer ${worker.authToken}`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'bad_upgrade');
  });

  it('a plain GET of the connect path is no socket request: 404 route', async () => {
    const res = await fetch(`${studio.url}/graphics/api/workers/${worker.workerId}/connect`, { headers: { authorization: `Bearer ${worker.authToken}` } });
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { message: string }).message, /no route GET/);
  });

  it('the dashboard feed: no token 401, the admin token as a subprotocol opens it with a hello', async () => {
    const refused = await raw(`GET /graphics/api/realtime HTTP/1.1\r\n${handshake}Sec-WebSocket-Protocol: studio-dashboard`);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'auth_failed');
    const ws = new WebSocket(`${studio.url.replace('http', 'ws')}/graphics/api/realtime`, ['studio-dashboard', `bearer.${ADMIN}`]);
    const hello = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data) => resolve(String(data)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`answered ${res.statusCode}`)));
    });
    assert.deepEqual(JSON.parse(hello), { events: [], hello: true });
    ws.close();
  });
});
