/**
 * µs per worker frame read by the studio (`parseWorkerFrame`) and per offer written
 * (`encodeOffer`): `node bench/frames.ts [--n N]`. The frames are the ones a default daemon sends
 * (capabilities like `idle-sessions.ts`'s); best of 5 rounds of N each.
 */
import { parseArgs } from 'node:util';
import { parseWorkerFrame } from '../packages/protocol/src/parse.ts';
import { encodeOffer } from '../packages/studio/src/core/dispatcher.ts';

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
