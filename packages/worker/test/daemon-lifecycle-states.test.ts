import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Lifecycle, REPEAT_SIGNAL_WINDOW_MS } from '../src/daemon/lifecycle.ts';

test('lifecycle: starting → running ⇄ paused → draining → stopping; nothing goes back from a stop', () => {
  const life = new Lifecycle();
  assert.equal(life.phase, 'starting');
  life.started();
  assert.equal(life.phase, 'running');
  assert.equal(life.setPaused(true), true);
  assert.equal(life.setPaused(true), false, 'pausing twice changes nothing');
  assert.equal(life.paused, true);
  assert.equal(life.setPaused(false), true);
  assert.equal(life.drain('SIGTERM'), true);
  assert.equal(life.drain('update'), false, 'a second stop request joins the first');
  assert.equal(life.shuttingDown, true);
  assert.equal(life.setPaused(true), false, 'no pause while draining');
  life.stop();
  assert.equal(life.phase, 'stopping');
  assert.throws(() => life.stop(), /no way from stopping to stopping/);
});

test('lifecycle: a pause during start-up holds; a signal during start-up is remembered for later', () => {
  const life = new Lifecycle();
  assert.equal(life.setPaused(true), true);
  life.started();
  assert.equal(life.phase, 'paused');
  const early = new Lifecycle();
  assert.equal(early.signal('SIGINT'), 'stop');
  assert.equal(early.pendingStop, 'SIGINT');
  early.started();
  assert.equal(early.pendingStop, 'SIGINT', 'still to honour once running');
  assert.equal(early.drain('SIGINT'), true);
  assert.equal(early.pendingStop, undefined);
});

test('lifecycle: a second signal within the window is the same request; later it means exit now', () => {
  let now = 1_000;
  const life = new Lifecycle(() => now);
  life.started();
  assert.equal(life.drain('update'), true);
  now += REPEAT_SIGNAL_WINDOW_MS - 1;
  assert.equal(life.signal('SIGTERM'), 'repeat', 'measured from the moment the stop began');
  now += 2;
  assert.equal(life.signal('SIGTERM'), 'exit-now');
});
