import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ALL_FEATURES, capabilities, connectWorker, imageJob, makeHarness } from './harness.ts';

// Split text encoders (file roles clip-l, clip-g, t5xxl) are ours: an original worker would refuse
// the offer as malformed, so such a job goes only to workers announcing 'split-text-encoders'.
it('a job whose model has a t5xxl file is offered only to a worker that announces split-text-encoders', () => {
  const h = makeHarness();
  const sdCpp = { supportedModelsPerKind: { image: ['sd-cpp:*'] }, taskKinds: ['image' as const] };
  const file = (role: string, filename: string) => ({ role, url: `https://models.example/${filename}`, filename });
  const source = { engine: 'sd-cpp', files: [file('diffusion-model', 'flux.gguf'), file('clip-l', 'clip_l.safetensors'), file('t5xxl', 't5xxl.gguf')], cliDefaults: {} };
  assert.ok(h.core.models.create({ id: 'flux', kind: 'image', vramGbEstimate: 0, enabled: true, source } as never).ok);

  const original = connectWorker(h, capabilities({ ...sdCpp, protocolFeatures: ALL_FEATURES }));
  const job = imageJob(h, 'p', 'flux');
  assert.equal(job.status, 'queued', 'not offered on creation to the worker without the feature');
  const another = connectWorker(h, capabilities({ ...sdCpp, protocolFeatures: ALL_FEATURES }));
  assert.equal(h.channel.of(original.connId, 'offer').length + h.channel.of(another.connId, 'offer').length, 0, 'nor when an idle one asks');

  const ours = connectWorker(h, capabilities({ ...sdCpp, protocolFeatures: [...ALL_FEATURES, 'split-text-encoders'] }));
  const [offer] = h.channel.of(ours.connId, 'offer');
  assert.equal(offer?.claim.jobId, job.id);
  assert.deepEqual(offer?.claim.modelSource.files.map((f) => f.role), ['diffusion-model', 'clip-l', 't5xxl']);

  // A plain sd-cpp job still goes to the original worker.
  assert.ok(h.core.models.create({ id: 'sd15', kind: 'image', vramGbEstimate: 0, enabled: true, source: { engine: 'sd-cpp', files: [file('model', 'sd15.safetensors')], cliDefaults: {} } } as never).ok);
  const plain = imageJob(h, 'p', 'sd15');
  assert.equal(plain.status, 'claimed');
});
