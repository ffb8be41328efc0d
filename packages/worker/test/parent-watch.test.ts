import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXIT_WITH_PARENT_ENV, watchParentFromEnv } from '../src/daemon/parent-watch.ts';

describe('exit with the parent (STUDIO_WORKER_EXIT_WITH_PARENT)', () => {
  it('does nothing without the opt-in', () => {
    const env: NodeJS.ProcessEnv = {};
    assert.equal(
      watchParentFromEnv(() => assert.fail('called'), { env, parentPid: () => 1 }),
      null,
    );
  });

  it('reports the original parent once, when another one has taken its place; the variable is not passed on', async () => {
    const env: NodeJS.ProcessEnv = { [EXIT_WITH_PARENT_ENV]: '1', OTHER: 'x' };
    let parent = 4242;
    const gone = Promise.withResolvers<number>();
    const calls: number[] = [];
    const stop = watchParentFromEnv(
      (original) => {
        calls.push(original);
        gone.resolve(original);
      },
      { env, parentPid: () => parent, intervalMs: 1 },
    );
    assert.ok(stop);
    assert.deepEqual(env, { OTHER: 'x' }, 'children of the daemon do not inherit the opt-in');
    parent = 1; // re-parented to init: the launcher died
    assert.equal(await gone.promise, 4242);
    // The watch ended with that one call.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(calls, [4242]);
    stop();
  });

  it('stops watching when told to', async () => {
    const env: NodeJS.ProcessEnv = { [EXIT_WITH_PARENT_ENV]: '1' };
    let polls = 0;
    const stop = watchParentFromEnv(() => assert.fail('called'), {
      env,
      parentPid: () => {
        polls++;
        return 7;
      },
      intervalMs: 1,
    });
    stop?.();
    const before = polls;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(polls, before);
  });
});
