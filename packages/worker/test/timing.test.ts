import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineProgress } from '../src/engines/engine.ts';
import { reconnectDelayMs, uploadRetryDelayMs } from '../src/session/backoff.ts';
import { ProgressThrottle } from '../src/runner/progress-throttle.ts';
import { Changes } from './helpers/wait.ts';

describe('backoff', () => {
  it('reconnects after 1 s doubling to 30 s', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 50].map((attempt) => reconnectDelayMs(attempt, 1000, 30_000)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
    );
    assert.deepEqual([1, 2, 3].map((attempt) => reconnectDelayMs(attempt, 40, 100)), [40, 80, 100]);
  });

  it('retries uploads after 1 s and 2 s, then doubles up to 30 s', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 60].map((round) => uploadRetryDelayMs(round, 1000)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
    );
  });
});

describe('progress throttle', () => {
  it('sends the first update at once, then only the latest per interval', async () => {
    const sent: Array<{ update: EngineProgress; at: number }> = [];
    const changes = new Changes();
    const throttle = new ProgressThrottle(100, (update) => {
      sent.push({ update, at: performance.now() });
      changes.signal();
    });
    const start = performance.now();
    for (let step = 1; step <= 5; step++) throttle.push({ phase: 'generating', step, total: 10 });
    assert.deepEqual(sent.map((s) => s.update.step), [1], 'the first update goes out at once');
    await changes.waitFor(() => (sent.length === 2 ? true : undefined), 'the trailing update');
    assert.deepEqual(sent.map((s) => s.update.step), [1, 5], 'intermediate updates are dropped, the latest wins');
    // Timers run on libuv's cached loop clock and can look ~1 ms early against performance.now().
    assert.ok(sent[1]!.at - start >= 90, `held back for the interval (${Math.round(sent[1]!.at - start)} ms)`);
    throttle.push({ phase: 'generating', step: 6, total: 10 });
    throttle.push({ phase: 'encoding', step: 7, total: 10 });
    throttle.stop();
    throttle.push({ phase: 'uploading' });
    // The stopped throttle's trailing timer would fire within 100 ms; a probe whose own trailing
    // update comes 150 ms later proves it never did.
    let probed = 0;
    const probe = new ProgressThrottle(150, () => {
      probed++;
      changes.signal();
    });
    probe.push({ phase: 'queued' });
    probe.push({ phase: 'loading' });
    await changes.waitFor(() => (probed === 2 ? true : undefined), 'the probe timer');
    assert.deepEqual(sent.map((s) => s.update.step), [1, 5], 'nothing after stop()');
  });

  it('a throwing sender does not break the job', () => {
    const throttle = new ProgressThrottle(100, () => {
      throw new Error('socket gone');
    });
    assert.doesNotThrow(() => throttle.push({ phase: 'generating' }));
    throttle.stop();
  });
});
