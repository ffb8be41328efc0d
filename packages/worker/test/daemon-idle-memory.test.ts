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
    const reducer = new IdleMemoryReducer(30, () => busy, {
      gc: (options) => {
        calls.push({ ...options, busy, at: performance.now() });
        reduced();
      },
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

  it('while the quiet lasts, reduces again only once the resident set grew back by regrowBytes', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const MiB = 1024 * 1024;
    let rss = 90 * MiB;
    const log: string[] = [];
    const reducer = new IdleMemoryReducer(1_000, () => false, {
      gc: () => {
        log.push(`gc at ${rss / MiB}`);
        rss = 77 * MiB; // what the GC gave back
      },
      rss: () => rss,
      regrowBytes: 1 * MiB,
    });
    t.mock.timers.tick(1_000); // quiet for idleMs: the first reduction, whatever the size
    assert.deepEqual(log, ['gc at 90']);
    rss = 77.5 * MiB;
    t.mock.timers.tick(6_000); // the next look, idleMs × 6 later: grew by half a MiB, skipped
    assert.deepEqual([log.length, reducer.skipped], [1, 1]);
    rss = 78 * MiB;
    t.mock.timers.tick(6_000); // grew by 1 MiB: reduces
    assert.deepEqual(log, ['gc at 90', 'gc at 78']);
    reducer.activity(); // a job ran: the next quiet reduces whatever the growth
    rss = 77.1 * MiB;
    t.mock.timers.tick(1_000);
    reducer.stop();
    assert.deepEqual(log, ['gc at 90', 'gc at 78', 'gc at 77.1']);
    assert.equal(reducer.reductions, 3);
    assert.equal(reducer.skipped, 1);
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
