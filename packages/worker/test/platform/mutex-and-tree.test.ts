import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { Mutex } from '../../src/platform/mutex.ts';
import { signalTree } from '../../src/platform/process-tree.ts';

test('Mutex: a release hands it to the next waiter in arrival order; an aborted waiter leaves the queue with the signal reason', async () => {
  const mutex = new Mutex();
  const first = mutex.tryAcquire();
  assert.ok(first);
  assert.equal(mutex.tryAcquire(), null);
  const order: string[] = [];
  const abort = new AbortController();
  const second = mutex.acquire().then((release) => (order.push('second'), release));
  const gaveUp = mutex.acquire(abort.signal).then(
    () => order.push('aborted waiter got it'),
    (reason: unknown) => order.push(`rejected: ${String(reason)}`),
  );
  const third = mutex.acquire().then((release) => (order.push('third'), release));
  abort.abort('changed my mind');
  await gaveUp;
  first();
  first(); // twice is harmless: it must not release the second holder's turn
  (await second)();
  (await third)();
  assert.deepEqual(order, ['rejected: changed my mind', 'second', 'third']);
  assert.equal(mutex.held, false);
});

test('signalTree reaches a grandchild through the process group, and says false when the group is gone', { skip: process.platform === 'win32' }, async () => {
  // A shell (group leader) that starts a sleeping grandchild and prints its pid.
  const leader = spawn('sh', ['-c', 'sleep 300 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  const [chunk] = (await once(leader.stdout, 'data')) as [Buffer];
  const grandchild = Number(chunk.toString().trim());
  assert.ok(grandchild > 0);
  const exited = once(leader, 'exit');
  assert.equal(signalTree(leader.pid!, 'SIGKILL'), true);
  await exited;
  // The grandchild got the same SIGKILL: wait for it to disappear (it is reaped by init); had only
  // the leader been killed it would sleep on for 300 s.
  const deadline = performance.now() + 10_000;
  for (;;) {
    assert.ok(performance.now() < deadline, `grandchild ${grandchild} outlived its group's SIGKILL`);
    try {
      process.kill(grandchild, 0);
    } catch {
      break;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.equal(signalTree(leader.pid!, 'SIGKILL'), false);
});
