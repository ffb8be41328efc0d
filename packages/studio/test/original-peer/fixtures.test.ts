// The *.original.json contract fixtures are the original's exact shapes (checked with the strict
// schemas written from original-spec §4), and what our studio sends a peer without protocolFeatures
// is exactly those shapes, while our own worker (every feature) keeps the extended ones.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mimeForExt, PROTOCOL_FEATURES, RESULT_FILE_FIELD, type TaskInput } from '@studio-worker/protocol';
import { capabilities, connectWorker, makeHarness, type Harness } from '../core/harness.ts';
import { OriginalWorkerFrame, parseAsOriginal } from './original-schemas.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'protocol', 'test', 'fixtures');

function originals(dir: string): Array<{ name: string; text: string }> {
  return readdirSync(join(FIXTURES, dir))
    .filter((f) => f.endsWith('.original.json'))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(FIXTURES, dir, name), 'utf8').trim() }));
}

/** Every raw text the core sends, per connection (the harness channel keeps parsed frames only). */
function recordRaw(h: Harness): Map<string, string[]> {
  const raw = new Map<string, string[]>();
  const send = h.channel.send.bind(h.channel);
  h.channel.send = (connId: string, text: string) => {
    raw.set(connId, [...(raw.get(connId) ?? []), text]);
    send(connId, text);
  };
  return raw;
}

const ALL_KINDS = capabilities({
  taskKinds: ['image', 'llm', 'audio_stt', 'audio_tts', 'video'],
  supportedModelsPerKind: { image: ['synthetic', 'comfyui:*'], llm: ['synthetic', 'llama-cpp:*'], audio_stt: ['synthetic'], audio_tts: ['synthetic'], video: ['synthetic'] },
});
const ORIGINAL_PEER = { ...ALL_KINDS, protocolFeatures: undefined };
const OUR_WORKER = { ...ALL_KINDS, protocolFeatures: [...PROTOCOL_FEATURES] };

describe('original fixtures', () => {
  for (const f of originals('studio-to-worker')) {
    it(`studio-to-worker/${f.name} parses with the original's strict parser`, () => {
      const parsed = parseAsOriginal(f.text);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    });
  }
  for (const f of originals('worker-to-studio')) {
    it(`worker-to-studio/${f.name} is what the original sends`, () => {
      const parsed = OriginalWorkerFrame.safeParse(JSON.parse(f.text));
      assert.ok(parsed.success, parsed.error?.message);
    });
  }
  for (const f of originals('multipart')) {
    it(`multipart/${f.name}: fields prompt and ext, the file part named "image" with the extension's type`, () => {
      const m = JSON.parse(f.text) as { fields: Array<{ name: string; value: string }>; file: { name: string; filename: string; contentType: string } };
      assert.deepEqual(m.fields.map((x) => x.name), ['prompt', 'ext']);
      assert.equal(m.file.name, RESULT_FILE_FIELD);
      const ext = m.fields[1]?.value ?? '';
      assert.equal(m.file.contentType, mimeForExt(ext));
      assert.ok(m.file.filename.endsWith(`.${ext}`));
    });
  }
});

describe('what our studio sends, by what the peer announced', () => {
  const kinds: Array<[string, string]> = [
    ['image', 'synthetic-image'],
    ['llm', 'synthetic-llm'],
    ['stt', 'synthetic-stt'],
    ['tts', 'synthetic-tts'],
    ['video', 'synthetic-video'],
  ];
  for (const [name, model] of kinds) {
    it(`an offer of ${model} to a peer without features is offer.${name}.original.json, to ours it carries attempt`, () => {
      const fixture = JSON.parse(readFileSync(join(FIXTURES, 'studio-to-worker', `offer.${name}.original.json`), 'utf8'));
      const h = makeHarness();
      const raw = recordRaw(h);
      const original = connectWorker(h, ORIGINAL_PEER);
      const job = h.core.jobs.create({ model, task: fixture.claim.task as TaskInput as never, gameId: fixture.claim.gameId, assetName: fixture.claim.assetName, priority: 0 });
      assert.ok(job.ok);
      const text = (raw.get(original.connId) ?? []).find((t) => t.includes('"offer"')) ?? '';
      assert.ok(parseAsOriginal(text).ok, text);
      assert.deepEqual(JSON.parse(text), { ...fixture, claim: { ...fixture.claim, jobId: job.value.id } });

      const h2 = makeHarness();
      const raw2 = recordRaw(h2);
      const ours = connectWorker(h2, OUR_WORKER);
      const job2 = h2.core.jobs.create({ model, task: fixture.claim.task, gameId: '', assetName: '', priority: 0 });
      assert.ok(job2.ok);
      const offer = JSON.parse((raw2.get(ours.connId) ?? []).find((t) => t.includes('"offer"')) ?? '{}');
      assert.equal(offer.claim.attempt, 1);
    });
  }

  it('a welcome, acks and errors to a peer without features carry only the original fields', () => {
    const h = makeHarness();
    const raw = recordRaw(h);
    const w = connectWorker(h, ORIGINAL_PEER);
    const llm = h.core.jobs.create({ model: 'synthetic-llm', task: { kind: 'llm', messages: [{ role: 'user', content: 'x' }] } as never, gameId: '', assetName: '', priority: 0 });
    assert.ok(llm.ok);
    h.core.dispatcher.handleText(w.connId, JSON.stringify({ type: 'accept', jobId: llm.value.id }));
    h.core.dispatcher.handleText(w.connId, JSON.stringify({ type: 'completeJson', jobId: llm.value.id, result: { ok: true } }));
    h.core.dispatcher.handleText(w.connId, JSON.stringify({ type: 'completeJson', jobId: llm.value.id, result: { late: true } }));
    h.core.dispatcher.handleText(w.connId, JSON.stringify({ type: 'fail', jobId: 'job-unknown', error: 'x', retryable: true }));
    h.core.dispatcher.handleText(w.connId, '{"type":"accept"}');
    const texts = raw.get(w.connId) ?? [];
    for (const t of texts) assert.ok(parseAsOriginal(t).ok, t);
    assert.deepEqual(
      texts.map((t) => JSON.parse(t).type),
      ['welcome', 'offer', 'completeAck', 'completeAck', 'failAck', 'error'],
    );
  });

  it('jobs with an engine or file role the original does not know go only to our worker', () => {
    const h = makeHarness();
    const raw = recordRaw(h);
    const original = connectWorker(h, ORIGINAL_PEER);
    const comfy = h.core.jobs.create({ model: 'sdxl-turbo-comfyui', task: { kind: 'image', prompt: 'p' } as never, gameId: '', assetName: '', priority: 0 });
    assert.ok(h.core.models.create({ id: 'vision', kind: 'llm', vramGbEstimate: 0, enabled: true, source: { engine: 'llama-cpp', files: [{ role: 'mmproj', url: 'https://e.com/p.gguf', filename: 'p.gguf' }], cliDefaults: {} } }).ok);
    const vision = h.core.jobs.create({ model: 'vision', task: { kind: 'llm', messages: [{ role: 'user', content: 'x' }] } as never, gameId: '', assetName: '', priority: 0 });
    assert.ok(comfy.ok && vision.ok);
    assert.equal((raw.get(original.connId) ?? []).filter((t) => t.includes('"offer"')).length, 0);
    const ours = connectWorker(h, OUR_WORKER);
    const offered = (raw.get(ours.connId) ?? []).filter((t) => t.includes('"offer"')).map((t) => JSON.parse(t).claim);
    assert.equal(offered.length, 1, 'one slot: the first of the two');
    assert.equal(offered[0].jobId, comfy.value.id);
    assert.ok(offered[0].modelSource.cliDefaults.workflow, 'our worker gets the model source as stored (extra keys kept)');
  });
});
