// Thousands of malformed, unknown, oversized and binary frames at a real studio process over real
// sockets: it never crashes, answers only with well-formed typed frames, keeps serving a legitimate
// worker meanwhile, and its memory does not grow with the abuse: the JavaScript heap and the Buffers
// live objects hold, read after a full GC through the studio's inspector (inspector-heap.ts says why
// RSS alone cannot tell a leak from a burst of large frames the collector has not handed back yet).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ERROR_CODES, parseStudioFrame, SUBPROTOCOL, workerConnectUrl, type StudioFrame } from '@studio-worker/protocol';
import { imageWorkerCapabilities, ScriptedWorker } from '../../packages/studio/test/dashboard/scripted-worker.ts';
import { startStudioProcess, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { heapAfterGc, INSPECTOR_LINE, inspectNodeOptions } from '../helpers/inspector-heap.ts';
import { FrameFuzzer, rssMiB } from './frame-fuzzer.ts';

let dir: string;
let studio: StudioProc;
let debuggerUrl: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fuzz-studio-'));
  // The Node host: its heap is what is measured (the inspector is this process's).
  studio = await startStudioProcess({ host: 'node', dataDir: join(dir, 'studio'), env: { STUDIO_WORKER_LOG: 'error', NODE_OPTIONS: inspectNodeOptions() } });
  debuggerUrl = (await studio.proc.waitForOutput(INSPECTOR_LINE))[1] as string;
});

after(async () => {
  await studio?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Tally {
  sent: number;
  received: StudioFrame[];
  unparseable: string[];
  closes: Map<number, number>;
}

/** One abusive connection: optionally a valid hello first, then frames until the studio closes it or we run out. */
async function abuse(url: string, creds: { workerId: string; authToken: string }, fuzzer: FrameFuzzer, budget: number, tally: Tally, helloFirst: boolean): Promise<number> {
  const ws = new WebSocket(url, SUBPROTOCOL, { headers: { authorization: `Bearer ${creds.authToken}` } });
  ws.on('message', (data) => {
    const parsed = parseStudioFrame(data.toString());
    if (parsed.ok) tally.received.push(parsed.frame);
    else tally.unparseable.push(data.toString().slice(0, 200));
  });
  ws.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    ws.on('close', (code) => {
      tally.closes.set(code, (tally.closes.get(code) ?? 0) + 1);
      resolve();
    }),
  );
  await new Promise<void>((resolve) => {
    ws.once('open', () => resolve());
    ws.once('close', () => resolve());
  });
  let sent = 0;
  if (ws.readyState === WebSocket.OPEN && helloFirst) {
    // The fuzzer serves no kinds, so no job is ever offered to these abusive sessions.
    const capabilities = { ...imageWorkerCapabilities('fuzzer'), taskKinds: [], supportedModelsPerKind: {}, supportedModels: [] };
    ws.send(JSON.stringify({ type: 'hello', authToken: creds.authToken, capabilities }));
  }
  while (sent < budget && ws.readyState === WebSocket.OPEN) {
    const frame = fuzzer.next();
    if (frame.kind === 'binary') ws.send(frame.bytes);
    else ws.send(frame.text);
    sent++;
    // Let the studio answer now and then, so closes are seen between frames.
    if (sent % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  await closed;
  tally.sent += sent;
  return sent;
}

async function abuseRound(frames: number, seed: number, creds: { workerId: string; authToken: string }, tally: Tally): Promise<void> {
  const fuzzer = new FrameFuzzer(seed, 'to-studio');
  const url = workerConnectUrl(`${studio.url}/`, creds.workerId);
  let left = frames;
  let connection = 0;
  while (left > 0) left -= await abuse(url, creds, fuzzer, Math.min(left, 200), tally, connection++ % 3 !== 0);
}

describe('frame fuzzing against the studio', () => {
  it('survives thousands of bad frames with typed answers, keeps serving a real worker, memory stable', { timeout: 120_000 }, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    const fuzzerCreds = await studio.api.createWorker('fuzzer');
    const good = await studio.api.createWorker('good worker');
    const worker = await ScriptedWorker.connect(`${studio.url}/`, good.workerId, good.authToken, imageWorkerCapabilities('good'));
    const tally: Tally = { sent: 0, received: [], unparseable: [], closes: new Map() };
    try {
      // Warm-up round, then the measured rounds.
      await abuseRound(1000, seed, fuzzerCreds, tally);
      const heapAfterWarmup = await heapAfterGc(debuggerUrl);
      const rssAfterWarmup = rssMiB(studio.proc.pid);
      const jobs = await studio.api.createJobs(Array.from({ length: 20 }, (_, i) => ({ model: 'synthetic-image', task: { kind: 'image', prompt: `during fuzz ${i}` } })));
      for (let round = 1; round <= 4; round++) await abuseRound(1000, seed + round, fuzzerCreds, tally);
      const heapAfter = await heapAfterGc(debuggerUrl);
      const rssAfter = rssMiB(studio.proc.pid);

      assert.ok(studio.proc.alive, 'the studio is still running');
      assert.equal((await studio.api.json<{ ok: boolean }>('GET', '/health')).ok, true);
      assert.ok(tally.sent >= 5000, `sent ${tally.sent} frames`);
      assert.deepEqual(tally.unparseable, [], 'every frame the studio sent is well-formed');
      const errors = tally.received.filter((f): f is Extract<StudioFrame, { type: 'error' }> => f.type === 'error');
      assert.ok(errors.length > 1000, `typed errors answered the abuse (${errors.length})`);
      for (const e of errors) assert.ok((ERROR_CODES as readonly string[]).includes(e.code));
      assert.ok(errors.every((e) => e.code === 'protocol_violation' || e.code === 'duplicate_worker' || e.code === 'stale_attempt' || e.code === 'unknown_job'), 'only protocol errors');
      assert.ok((tally.closes.get(4002) ?? 0) > 0, 'repeated abuse closes the session with 4002');
      assert.ok((tally.closes.get(1009) ?? 0) > 0, 'oversized frames are refused (1009)');
      // The honest worker kept working throughout.
      await waitFor('the 20 jobs done by the good worker', async () => {
        const views = await Promise.all(jobs.map((j) => studio.api.job(j.id)));
        return views.every((v) => v.status === 'done' && v.lastWorkerId === good.workerId);
      }, { timeoutMs: 20_000 });
      assert.deepEqual(worker.errors, []);
      // Measured: 1.4-1.9 MiB (the 20 jobs, V8's code and feedback for new paths; it levels off after
      // ~5 rounds). A leak of 1.5 KB per text frame the dispatcher reads fails (tried: a Buffer kept per
      // frame in Dispatcher.handleText made it 7.8 MiB).
      const grew = heapAfter.heapUsedMiB + heapAfter.externalMiB - (heapAfterWarmup.heapUsedMiB + heapAfterWarmup.externalMiB);
      assert.ok(grew < 6, `the studio's heap and Buffers grew by ${grew.toFixed(2)} MiB after GC over 4000 abusive frames (seed ${seed})`);
      // And the process as a whole, both sides after a full GC (measured: 1.1-1.6 MiB; read without the GC
      // it swung by up to 41 MiB with the collector's timing, which is what this test used to flake on).
      assert.ok(rssAfter - rssAfterWarmup < 40, `studio RSS grew by ${(rssAfter - rssAfterWarmup).toFixed(1)} MiB over 4000 abusive frames (seed ${seed})`);
    } finally {
      worker.close();
    }
  });
});
