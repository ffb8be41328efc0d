import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogRoot } from '@studio-worker/log';
import type { FailCode } from '@studio-worker/protocol';
import { classifyOutcome, FailureCooldown } from '../src/daemon/failure-cooldown.ts';
import type { OutboxPayload } from '../src/runner/outbox.ts';
import { Changes } from './helpers/wait.ts';

const fail = (code: FailCode, error = `broke (${code})`): OutboxPayload => ({ kind: 'fail', code, retryable: true, error });
const ok: OutboxPayload = { kind: 'json', prompt: 'p', result: 1 };
const job = (jobId: string) => ({ jobId, attempt: 1 });

/** A cooldown with captured log lines and a change counter that wakes waits. */
function cooldown(cooldownMs: number) {
  const lines: Array<Record<string, unknown>> = [];
  const changes = new Changes();
  let changed = 0;
  const logs = createLogRoot({
    app: 'test',
    spec: 'debug',
    destination: {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  const subject = new FailureCooldown({
    cooldownMs: () => cooldownMs,
    log: logs.child('daemon'),
    onChange: () => {
      changed++;
      changes.signal();
    },
  });
  return { subject, lines, changes, changed: () => changed };
}

describe('failure cooldown', () => {
  it('counts engine failures only: cancels, hand-backs and upload give-ups are neutral', () => {
    assert.equal(classifyOutcome(ok), 'success');
    assert.equal(classifyOutcome({ kind: 'file', prompt: 'p', ext: 'png', body: new Uint8Array([1]) }), 'success');
    for (const code of ['engine_error', 'engine_unavailable', 'bad_input', 'timeout'] as const) assert.equal(classifyOutcome(fail(code)), 'failure', code);
    for (const code of ['cancelled', 'handed_back', 'upload_failed'] as const) assert.equal(classifyOutcome(fail(code)), 'neutral', code);
  });

  it('pauses after 3 failures in a row, says why and until when; neutral outcomes do not break the streak, a success resets it', () => {
    const { subject, lines } = cooldown(60_000);
    try {
      subject.record(job('a'), fail('engine_error'));
      subject.record(job('b'), fail('timeout'));
      subject.record(job('ok'), ok);
      assert.equal(subject.snapshot().consecutiveFailures, 0, 'a success resets the count');
      subject.record(job('c'), fail('engine_error'));
      subject.record(job('d'), fail('cancelled'));
      subject.record(job('e'), fail('engine_error'));
      assert.deepEqual(subject.snapshot(), { consecutiveFailures: 2, lastFailure: 'engine_error: broke (engine_error)' });
      assert.equal(subject.holdBack(), null);
      assert.equal(subject.active, false);

      const before = Date.now();
      subject.record(job('f'), fail('bad_input', 'the mask is not an image'));
      assert.equal(subject.active, true);
      const snapshot = subject.snapshot();
      assert.equal(snapshot.consecutiveFailures, 3);
      assert.equal(snapshot.cooldownAfterFailures, 3);
      assert.equal(snapshot.lastFailure, 'bad_input: the mask is not an image');
      const until = Date.parse(snapshot.cooldownUntil ?? '');
      assert.ok(until >= before + 60_000 && until <= Date.now() + 60_000, 'until = the third failure + failure_cooldown_secs');
      const reason = subject.holdBack() ?? '';
      assert.match(reason, /after 3 failed jobs in a row/);
      assert.ok(reason.includes(`until ${snapshot.cooldownUntil}`), reason);
      assert.match(reason, /last error: bad_input: the mask is not an image/);
      const warning = lines.find((line) => line.op === 'cooldown' && line.level === 'warn');
      assert.ok(warning, 'a warning with op cooldown');
      assert.equal(warning.consecutiveFailures, 3);
      assert.match(String(warning.msg), /failure_cooldown_secs/);

      // A success during the cooldown resets the count; the announced pause still runs to its end.
      subject.record(job('late-success'), ok);
      assert.equal(subject.snapshot().consecutiveFailures, 0);
      assert.equal(subject.active, true);
      assert.match(subject.holdBack() ?? '', /after 3 failed jobs/);
    } finally {
      subject.close();
    }
  });

  it('ends on its own, then a further failure without a success pauses again at once', async () => {
    const { subject, lines, changes } = cooldown(50);
    try {
      for (const id of ['a', 'b', 'c']) subject.record(job(id), fail('engine_error'));
      assert.equal(subject.active, true);
      await changes.waitFor(() => (subject.active ? undefined : true), 'the cooldown to end');
      assert.equal(subject.holdBack(), null);
      assert.equal(subject.snapshot().cooldownUntil, undefined);
      assert.ok(lines.some((line) => line.op === 'cooldown' && line.msg === 'cooldown over; taking offers again'));
      subject.record(job('d'), fail('engine_error'));
      assert.equal(subject.active, true, 'still failing after the pause: pause again');
      assert.equal(subject.snapshot().cooldownAfterFailures, 4);
    } finally {
      subject.close();
    }
  });

  it('failure_cooldown_secs = 0 never pauses', () => {
    const { subject, lines } = cooldown(0);
    for (const id of ['a', 'b', 'c', 'd']) subject.record(job(id), fail('engine_error'));
    assert.equal(subject.active, false);
    assert.equal(subject.holdBack(), null);
    assert.equal(subject.snapshot().consecutiveFailures, 4, 'still counted, for status');
    assert.equal(lines.filter((line) => line.level === 'warn').length, 0);
  });
});
