import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdleMemoryReducer } from '../src/daemon/idle-memory.ts';

describe('IdleMemoryReducer', () => {
  it('runs a memory-reducing GC once the daemon has been quiet for idleMs, not while a job runs', async () => {
    let busy = true;
    const calls: Array<{ flavor: string }> = [];
    let reduced!: () => void;
    const done = new Promise<void>((resolve) => (reduced = resolve));
    const startedAt = performance.now();
    const reducer = new IdleMemoryReducer(30, () => busy, (options) => {
      calls.push(options);
      reduced();
    });
    // Still busy when the first quiet period ends: it must wait for another.
    setTimeout(() => (busy = false), 45);
    await done;
    reducer.stop();
    assert.ok(performance.now() - startedAt >= 60, 'not before a quiet period after the job ended');
    assert.deepEqual(calls, [{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
    assert.equal(reducer.reductions, 1);
  });

  it('reaches V8s own gc in this process (the flag can be set at run time)', async () => {
    let reduced!: () => void;
    const done = new Promise<void>((resolve) => (reduced = resolve));
    const reducer = new IdleMemoryReducer(1, () => false);
    const check = setInterval(() => reducer.reductions > 0 && reduced(), 5);
    await done;
    clearInterval(check);
    reducer.stop();
    assert.equal(reducer.reductions, 1);
  });
});
