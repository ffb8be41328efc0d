// A duplicate worker under workerd (issue 12 item 2): a second socket with the same worker id is
// accepted (the upgrade is answered 101, nothing is closed inside `fetch()`, where a close reaches
// the client ~10 s late under workerd); its first message, the hello, closes the older socket at
// once with 4003 and an error frame saying why, and the newer one is welcomed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { WebSocket } from 'ws';
import { SUBPROTOCOL } from '@studio-worker/protocol';
import { benchCapabilities } from '../../../bench/sim-worker.ts';
import { startStudioProcess, type StudioProc } from '../../helpers/processes.ts';

let dir: string;
let studio: StudioProc;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-dup-'));
  studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host: 'cloudflare' });
});

after(async () => {
  await studio.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw worker socket: every text frame it gets, and its close. */
function open(workerId: string, authToken: string) {
  const ws = new WebSocket(`${studio.url.replace('http', 'ws')}/graphics/api/workers/${workerId}/connect`, SUBPROTOCOL, { headers: { authorization: `Bearer ${authToken}` } });
  const frames: Array<{ type: string; code?: string }> = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; at: number }>((resolve) => ws.once('close', (code) => resolve({ code, at: performance.now() })));
  const frame = async (type: string) => {
    for (;;) {
      const found = frames.find((f) => f.type === type);
      if (found) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  const hello = () => ws.send(JSON.stringify({ type: 'hello', authToken, capabilities: benchCapabilities(workerId), inFlight: [] }));
  return { ws, frames, closed, frame, opened, hello };
}

it('the older socket is closed (4003) as soon as the newer one says hello, not in fetch()', { timeout: 60_000 }, async () => {
  const { workerId, authToken } = await studio.api.createWorker('dup');
  const older = open(workerId, authToken);
  await older.opened;
  older.hello();
  await older.frame('welcome');

  const newer = open(workerId, authToken);
  await newer.opened;
  // Accepted without closing anything: the older session is still up and answers a heartbeat.
  older.ws.send(JSON.stringify({ type: 'heartbeat', capabilities: benchCapabilities(workerId), inFlight: [] }));
  await older.frame('heartbeatAck');
  assert.equal(older.ws.readyState, WebSocket.OPEN);

  const helloAt = performance.now();
  newer.hello();
  const [close] = await Promise.all([older.closed, newer.frame('welcome')]);
  assert.equal(close.code, 4003);
  assert.equal(older.frames.find((f) => f.type === 'error')?.code, 'duplicate_worker');
  // Prompt, not the ~10 s a close sent from fetch() takes under workerd.
  assert.ok(close.at - helloAt < 2000, `closed ${Math.round(close.at - helloAt)} ms after the newer hello`);
  assert.equal(newer.ws.readyState, WebSocket.OPEN);
  newer.ws.close(1000);
});
