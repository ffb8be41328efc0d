import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobId } from '../../src/core/jobs.ts';
import { JobStore } from '../../src/core/job-store.ts';
import { jobView } from '../../src/core/views.ts';
import { capabilities, connectWorker, makeHarness } from './harness.ts';

const llm = (content: string) => ({
  model: 'synthetic-llm',
  task: { kind: 'llm' as const, messages: [{ role: 'user', content }], maxTokens: 4, temperature: 0.7 },
  gameId: '',
  assetName: '',
  priority: 0,
});

describe('job ids', () => {
  it('are job- and 16 hex digits, and sort in creation order (they append to the primary-key index)', () => {
    assert.match(jobId(1, 'abcdef'), /^job-[0-9a-f]{16}$/);
    const ids = [1, 2, 15, 16, 255, 4096, 1_000_000, 2 ** 40 - 1].map((seq) => jobId(seq, '000000'));
    assert.deepEqual([...ids].sort(), ids);
    const h = makeHarness();
    const created = h.core.jobs.createMany([llm('a'), llm('b'), llm('c')]);
    assert.ok(created.ok);
    const made = created.value.map((j) => j.id);
    assert.equal(new Set(made).size, 3);
    assert.deepEqual([...made].sort(), made);
  });
});

describe('the create answer is built without reading the rows back', () => {
  it('insertedRow is exactly what the database holds after insert', () => {
    const h = makeHarness();
    const created = h.core.jobs.createMany([llm('x'), { ...llm('y'), priority: 3, maxAttempts: 2, gameId: 'g', assetName: 'a' }]);
    assert.ok(created.ok);
    for (const view of created.value) {
      const row = h.core.dispatcher.jobs.get(view.id);
      assert.ok(row);
      assert.equal(row.status, 'queued');
      const rebuilt = JobStore.insertedRow({
        id: row.id,
        seq: row.seq,
        model: row.model,
        kind: row.kind,
        engine: row.engine,
        task: row.task,
        modelSource: row.model_source,
        vramGbEstimate: row.vram_gb_estimate,
        gameId: row.game_id,
        assetName: row.asset_name,
        prompt: row.prompt,
        priority: row.priority,
        maxAttempts: row.max_attempts,
        now: row.created_at,
      });
      assert.deepEqual(rebuilt, { ...row });
      assert.deepEqual(view, jobView(row));
    }
  });

  it('a batch answer shows the jobs offered at once as claimed and the rest as queued, equal to a read', () => {
    const h = makeHarness();
    connectWorker(h, capabilities());
    const created = h.core.jobs.createMany([llm('1'), llm('2'), llm('3')]);
    assert.ok(created.ok);
    assert.deepEqual(created.value.map((j) => j.status), ['claimed', 'queued', 'queued']);
    for (const view of created.value) {
      const read = h.core.jobs.get(view.id);
      assert.ok(read.ok);
      const { attempts: _attempts, ...withoutAttempts } = read.value;
      assert.deepEqual(view, withoutAttempts);
    }
  });
});
