/**
 * µs per worker frame read by the studio (`parseWorkerFrame`) and per offer written
 * (`encodeOffer`), and per frame written to a worker socket (`ws` against `textFrames`):
 * `node bench/frames.ts [--n N]`. The frames are the ones a default daemon sends
 * (capabilities like `idle-sessions.ts`'s); best of 5 rounds of N each.
 */
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { parseWorkerFrame } from '../packages/protocol/src/parse.ts';
import { encodeOffer } from '../packages/studio/src/core/dispatcher.ts';
import { textFrames } from '../packages/studio/src/node/ws-frames.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '50000' } } });
const N = Number(values.n);

const capabilities = {
  machineName: 'box',
  username: 'ada',
  agentVersion: '0.1.0',
  engine: 'multi',
  vramTotalGb: 24,
  vramThresholdGb: 12,
  autoEnabled: true,
  autoStart: false,
  supportedModels: ['synthetic', 'synthetic-image', 'synthetic-llm'],
  taskKinds: ['image', 'llm', 'audio_stt', 'audio_tts', 'video'],
  supportedModelsPerKind: { image: ['synthetic', 'synthetic-image'], llm: ['synthetic', 'synthetic-llm'] },
  protocolFeatures: ['attempt', 'progress', 'cancel', 'resume', 'extended-offers', 'prefetch', 'split-text-encoders'],
};
const frames: Record<string, string> = {
  accept: JSON.stringify({ type: 'accept', jobId: 'job-0000000001f2a3b4', attempt: 1 }),
  completeJson: JSON.stringify({ type: 'completeJson', jobId: 'job-0000000001f2a3b4', attempt: 1, result: { ok: true } }),
  heartbeat: JSON.stringify({ type: 'heartbeat', capabilities, inFlight: [{ jobId: 'job-0000000001f2a3b4', attempt: 1, state: 'running' }] }),
  'heartbeat (idle)': JSON.stringify({ type: 'heartbeat', capabilities, inFlight: [] }),
  progress: JSON.stringify({ type: 'progress', jobId: 'job-0000000001f2a3b4', attempt: 1, phase: 'generating', step: 3, total: 20 }),
};

function best(fn: () => void): number {
  let min = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) fn();
    min = Math.min(min, ((performance.now() - t0) * 1000) / N);
  }
  return min;
}

for (const [name, text] of Object.entries(frames)) {
  const parsed = parseWorkerFrame(text);
  if (!parsed.ok) throw new Error(`${name}: ${JSON.stringify(parsed)}`);
  process.stdout.write(`parse ${name.padEnd(18)} ${best(() => parseWorkerFrame(text)).toFixed(2).padStart(6)} µs\n`);
}
const row = {
  id: 'job-0000000001f2a3b4',
  attempt: 1,
  model: 'synthetic-llm',
  game_id: '',
  asset_name: '',
  vram_gb_estimate: 0,
  task: JSON.stringify({ kind: 'llm', messages: [{ role: 'user', content: 'bench 1' }], maxTokens: 1, temperature: 0.7 }),
  model_source: JSON.stringify({ engine: 'synthetic', files: [] }),
};
process.stdout.write(`encode offer${' '.repeat(13)} ${best(() => encodeOffer(row)).toFixed(2).padStart(6)} µs\n`);

// Writing a commit's frames to the worker sockets: what `WorkerSockets.corked` does per commit,
// `ws` (cork, ws.send per frame, uncork) against one prebuilt Buffer per socket (`textFrames`).
// Real loopback sockets, 50 workers each getting a result ack and an offer per commit; only the
// studio side's synchronous send time is timed (the clients read in between rounds).
const SOCKETS = 50;
const COMMITS = Math.max(1, Math.round(N / 100));
const ack = JSON.stringify({ type: 'completeAck', jobId: 'job-0000000001f2a3b4', attempt: 1, stored: true });
const offer = encodeOffer(row);
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
const serverSide: WebSocket[] = [];
const connected = new Promise<void>((resolve) => wss.on('connection', (ws) => serverSide.push(ws) === SOCKETS && resolve()));
await new Promise((resolve) => wss.once('listening', resolve));
const port = (wss.address() as AddressInfo).port;
let received = 0;
const clients = Array.from({ length: SOCKETS }, () => {
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  client.on('message', () => received++);
  return client;
});
await connected;
/** µs per frame of one round of COMMITS commits, each sending two frames to every socket. */
async function writeRound(send: (ws: WebSocket) => void): Promise<number> {
  let busy = 0;
  for (let i = 0; i < COMMITS; i++) {
    const expected = received + 2 * SOCKETS;
    const t0 = performance.now();
    for (const ws of serverSide) send(ws);
    busy += performance.now() - t0;
    while (received < expected) await new Promise((resolve) => setImmediate(resolve));
  }
  return (busy * 1000) / (COMMITS * SOCKETS * 2);
}
const socketOf = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;
const viaWsSend = (ws: WebSocket) => {
  const socket = socketOf(ws);
  socket.cork();
  ws.send(ack);
  ws.send(offer);
  socket.uncork();
};
const viaOneBuffer = (ws: WebSocket) => socketOf(ws).write(textFrames([ack, offer]));
// Alternating rounds, best of each: the machine's load only ever adds time.
let viaWs = Number.POSITIVE_INFINITY;
let oneBuffer = Number.POSITIVE_INFINITY;
for (let round = 0; round < 8; round++) {
  viaWs = Math.min(viaWs, await writeRound(viaWsSend));
  oneBuffer = Math.min(oneBuffer, await writeRound(viaOneBuffer));
}
process.stdout.write(`socket write, ws corked  ${viaWs.toFixed(2).padStart(6)} µs per frame\n`);
process.stdout.write(`socket write, one Buffer ${oneBuffer.toFixed(2).padStart(6)} µs per frame\n`);
for (const client of clients) client.terminate();
wss.close();
