import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBackfill } from '../../src/node/client-cli/input.ts';
import { assetPath } from '../../src/node/client-cli/results.ts';

const line = (prompt: string, extra: object = {}) => JSON.stringify({ model: 'm', task: { kind: 'image', prompt }, ...extra });

describe('backfill input', () => {
  it('derives the same key for the same line on every run, distinct keys for repeated identical lines', () => {
    const text = [line('a'), line('b'), line('a'), line('c', { key: 'own' })].join('\n');
    const first = parseBackfill(text, 'jsonl', 'bf');
    const again = parseBackfill(`# comment\n\n${text}\n${line('d')}`, 'jsonl', 'bf');
    assert.ok(first.ok && again.ok);
    const keys = first.entries.map((e) => e.key);
    assert.equal(new Set(keys).size, 4, 'two identical lines are two jobs');
    assert.deepEqual(again.entries.slice(0, 4).map((e) => e.key), keys, 'comments, blank lines and appended lines change no key');
    assert.equal(keys[3], 'own');
    assert.deepEqual(first.entries.map((e) => e.line), [1, 2, 3, 4]);
    const other = parseBackfill(text, 'jsonl', 'rerun');
    assert.ok(other.ok && other.entries[0]?.key !== keys[0], 'a new prefix makes new jobs');
  });

  it('reads CSV with quoted fields and builds image tasks, or takes a task column as JSON', () => {
    const csv = 'model,prompt,gameId,assetName,width,task\nm,"a fox, ""red""\non two lines",g1,fox,64,\nm,,g1,voice,,"{""kind"":""audio_tts"",""text"":""hi""}"\n';
    const parsed = parseBackfill(csv, 'csv', 'bf');
    assert.ok(parsed.ok, JSON.stringify(parsed));
    assert.deepEqual(parsed.entries.map((e) => e.line), [2, 4]);
    const [fox, voice] = parsed.entries;
    assert.equal(fox?.request.task.kind, 'image');
    assert.equal(fox?.request.task.kind === 'image' && fox.request.task.prompt, 'a fox, "red"\non two lines');
    assert.equal(fox?.request.task.kind === 'image' && fox.request.task.width, 64);
    assert.equal(voice?.request.task.kind, 'audio_tts');
  });

  it('names every bad line at once and refuses duplicate keys', () => {
    const bad = parseBackfill(['{', line('ok'), JSON.stringify({ model: 'm', task: { kind: 'image' } }), line('x', { key: 'k' }), line('y', { key: 'k' })].join('\n'), 'jsonl', 'bf');
    assert.ok(!bad.ok);
    assert.equal(bad.errors.length, 3);
    assert.match(bad.errors[0] as string, /^line 1: not valid JSON/);
    assert.match(bad.errors[1] as string, /^line 3: .*prompt/);
    assert.match(bad.errors[2] as string, /^line 5: key "k" is already used on line 4/);
    assert.deepEqual(parseBackfill('a,b\n', 'csv', 'bf'), { ok: false, errors: ['unknown CSV column(s) a, b; known: model, prompt, gameId, assetName, priority, maxAttempts, key, task, width, height, steps, seed, cfgScale, negativePrompt, ext'] });
  });

  it('keeps result paths inside the output folder', () => {
    assert.equal(assetPath('game', 'heroes/knight'), 'game/heroes/knight');
    assert.equal(assetPath('../..', '../../etc/passwd'), '_._../etc/passwd', 'a gameId is one segment; ".." segments of the asset name are dropped');
    assert.equal(assetPath('', '.hidden'), '_hidden');
    assert.equal(assetPath('g', ''), undefined);
    assert.equal(assetPath('g', 'a\\b:c'), 'g/a_b_c');
  });
});
