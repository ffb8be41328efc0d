// Wire contract: every frame in both directions against literal JSON fixtures, including the
// original's shapes, so an original worker can talk to our studio and ours to the original studio.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  encodeFrame,
  MAX_LOG_CATEGORY_CHARS,
  MAX_LOG_MESSAGE_CHARS,
  parseStudioFrame,
  parseWorkerFrame,
  STUDIO_FRAME_TYPES,
  WORKER_FRAME_TYPES,
  type FrameParse,
} from '../src/index.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
function load(dir: string): Array<{ name: string; text: string; json: Record<string, unknown> }> {
  return readdirSync(join(fixtures, dir))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => {
      const text = readFileSync(join(fixtures, dir, name), 'utf8').trim();
      return { name, text, json: JSON.parse(text) };
    });
}

/** `sub` is contained in `full`: every field of the fixture survives a parse + encode. */
function assertContains(full: unknown, sub: unknown, path = '$'): void {
  if (sub === null || typeof sub !== 'object') return assert.deepEqual(full, sub, path);
  assert.ok(full !== null && typeof full === 'object', `${path} should be an object`);
  for (const [key, value] of Object.entries(sub)) assertContains((full as Record<string, unknown>)[key], value, `${path}.${key}`);
}

function roundTrip<F extends object>(parse: (t: string) => FrameParse<F>, dir: string, knownTypes: readonly string[]) {
  const cases = load(dir);
  it('has a fixture for every frame type', () => {
    const covered = new Set(cases.map((c) => c.json.type));
    assert.deepEqual([...knownTypes].filter((t) => !covered.has(t)), []);
  });
  for (const c of cases) {
    it(`${c.name} parses and re-encodes`, () => {
      const parsed = parse(c.text);
      assert.ok(parsed.ok, `expected ok, got ${JSON.stringify(parsed)}`);
      const reencoded = JSON.parse(encodeFrame(parsed.frame as never));
      assert.equal(reencoded.type, c.json.type);
      if (c.name.includes('.lenient.')) {
        // What the original may send and we read leniently: it parses (never an error frame), normalised.
        assert.equal(reencoded.entries?.length ?? 0, (c.json.entries as unknown[] | undefined)?.length ?? 0);
      } else if (c.name.includes('.original.')) {
        // The original's shapes: every field survives; our defaults may be added.
        assertContains(reencoded, c.json);
        assert.ok(!JSON.stringify(reencoded).includes('null'), 'absent fields are omitted, never null');
      } else {
        assert.deepEqual(reencoded, c.json);
      }
    });
  }
}

describe('worker → studio frames', () => roundTrip(parseWorkerFrame, 'worker-to-studio', WORKER_FRAME_TYPES));
describe('studio → worker frames', () => roundTrip(parseStudioFrame, 'studio-to-worker', STUDIO_FRAME_TYPES));

describe('malformed and unknown frames', () => {
  for (const c of load('malformed')) {
    it(`${c.name} → ${c.json.expect}`, () => {
      const parse = c.json.direction === 'studio' ? parseStudioFrame : parseWorkerFrame;
      const parsed = parse(c.json.text as string);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) {
        assert.equal(parsed.kind, c.json.expect);
        if (parsed.kind === 'malformed') assert.ok(parsed.message.length > 0);
      }
    });
  }

  it('explicit null is accepted on input and omitted on output', () => {
    const parsed = parseWorkerFrame(
      '{"type":"heartbeat","capabilities":{"machineName":"m","username":"u","agentVersion":"1","engine":"multi","vramTotalGb":0,"vramThresholdGb":0,"autoEnabled":true,"autoStart":false,"userPresence":null},"currentJobId":null}',
    );
    assert.ok(parsed.ok);
    const out = JSON.parse(encodeFrame(parsed.frame));
    assert.equal('currentJobId' in out, false);
    assert.equal('userPresence' in out.capabilities, false);
    assert.deepEqual(out.capabilities.taskKinds, []);
    assert.deepEqual(out.capabilities.supportedModelsPerKind, {});
  });

  it('names the offending field in the message', () => {
    const parsed = parseStudioFrame('{"type":"offer","claim":{"jobId":"j","model":"m","task":{"kind":"image","prompt":7},"modelSource":{"engine":"synthetic"}}}');
    assert.ok(!parsed.ok && parsed.kind === 'malformed');
    assert.match(parsed.message, /claim\.task\.prompt/);
  });

  it('refuses an oversized frame without parsing it', () => {
    const parsed = parseWorkerFrame(`{"type":"logBatch","entries":[],"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`);
    assert.ok(!parsed.ok && parsed.kind === 'malformed');
    assert.match(parsed.message, /larger than/);
  });

  it('log entries: any level (unknown → info), long text clipped and saying so; any batch size', () => {
    const entry = (level: string, message = 'm', category = 'c') => ({ ts: '2026-11-22T10:00:00.000Z', level, category, message });
    const parsed = parseWorkerFrame(
      JSON.stringify({
        type: 'logBatch',
        entries: [entry('notice'), entry('WARNING'), entry('fatal'), entry('trace'), entry('info', 'x'.repeat(20_000), 'y'.repeat(100)), ...Array.from({ length: 6000 }, () => entry('info'))],
      }),
    );
    assert.ok(parsed.ok && parsed.frame.type === 'logBatch');
    const [notice, warning, fatal, trace, long] = parsed.frame.entries;
    assert.deepEqual([notice?.level, warning?.level, fatal?.level, trace?.level], ['info', 'warn', 'error', 'debug']);
    assert.equal(long?.message.length, MAX_LOG_MESSAGE_CHARS);
    assert.match(long?.message ?? '', /\[\d+ more characters clipped\]$/);
    assert.equal(long?.category.length, MAX_LOG_CATEGORY_CHARS);
    assert.equal(parsed.frame.entries.length, 6005, 'the count limit is the studio’s to apply, with a counter');
  });

  it('refuses what the original cannot parse: a negative or fractional seed, a non-string reasoning', () => {
    const offer = (task: unknown) => parseStudioFrame(JSON.stringify({ type: 'offer', claim: { jobId: 'j', model: 'm', task, modelSource: { engine: 'synthetic' } } }));
    assert.equal(offer({ kind: 'image', prompt: 'p', seed: -1 }).ok, false);
    assert.equal(offer({ kind: 'image', prompt: 'p', seed: 1.5 }).ok, false);
    assert.equal(offer({ kind: 'image', prompt: 'p', seed: Number.MAX_SAFE_INTEGER }).ok, true);
    assert.equal(offer({ kind: 'llm', messages: [{ role: 'user', content: 'x' }], reasoning: { effort: 'high' } }).ok, false);
    assert.equal(offer({ kind: 'llm', messages: [{ role: 'user', content: 'x' }], reasoning: 'high' }).ok, true);
  });

  it('an unknown engine name still parses, so the worker can reject it as unsupported', () => {
    const parsed = parseStudioFrame(
      '{"type":"offer","claim":{"jobId":"j","model":"m","task":{"kind":"image","prompt":"p"},"modelSource":{"engine":"future-engine"},"attempt":1}}',
    );
    assert.ok(parsed.ok && parsed.frame.type === 'offer');
    assert.equal(parsed.frame.claim.modelSource.engine, 'future-engine');
  });
});
