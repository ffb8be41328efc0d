import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdleMemoryReducer } from '../src/daemon/idle-memory.ts';

describe('IdleMemoryReducer', () => {
  it('runs a memory-reducing GC once the daemon is quiet, never while a job runs', async () => {
    let busy = true;
    let busyEndedAt = Number.POSITIVE_INFINITY;
    const calls: Array<{ flavor: string; busy: boolean; at: number }> = [];
    let reduced!: () => void;
    const done = new Promise<void>((resolve) => (reduced = resolve));
    const reducer = new IdleMemoryReducer(30, () => busy, (options) => {
      calls.push({ ...options, busy, at: performance.now() });
      reduced();
    });
    // Busy past the first quiet period: the check then (whenever the timer really fires) must not
    // reduce; only a check after the job ended may. (Timers may fire late on a loaded machine, so
    // the test asserts the order of events, not a duration.)
    setTimeout(() => {
      busy = false;
      busyEndedAt = performance.now();
    }, 45);
    await done;
    reducer.stop();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.busy, false, 'never while a job runs');
    assert.ok((calls[0]?.at ?? 0) >= busyEndedAt, 'only after the job ended');
    assert.deepEqual(calls.map(({ busy: _b, at: _a, ...options }) => options), [{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
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
