import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JobGate } from '../src/platform/job-gate.ts';
import { DaemonLock, isProcessAlive, LockHeldError } from '../src/platform/lock.ts';
import { parseNvidiaSmiGpus, totalVramGb } from '../src/machine/vram.ts';
import { hashRegistrationSecret, newInstallId, newRegistrationSecret } from '../src/registration/index.ts';

describe('job gate', () => {
  it('admits one holder at a time; release is idempotent', () => {
    const gate = new JobGate();
    const release = gate.tryAcquire();
    assert.ok(release);
    assert.equal(gate.busy, true);
    assert.equal(gate.tryAcquire(), null);
    release();
    release();
    assert.equal(gate.busy, false);
    const again = gate.tryAcquire();
    assert.ok(again);
    release();
    assert.equal(gate.busy, true, "an old release cannot free someone else's hold");
    again();
  });

  it('acquire waits first come, first served; a release hands the gate straight to the next waiter', async () => {
    const gate = new JobGate();
    const first = gate.tryAcquire();
    assert.ok(first);
    const order: string[] = [];
    const second = gate.acquire().then((release) => (order.push('second'), release));
    const third = gate.acquire().then((release) => (order.push('third'), release));
    first();
    assert.equal(gate.busy, true, 'handed over, never free in between');
    assert.equal(gate.tryAcquire(), null, 'nobody can slip in before the waiter');
    const releaseSecond = await second;
    assert.deepEqual(order, ['second']);
    releaseSecond();
    releaseSecond();
    const releaseThird = await third;
    assert.deepEqual(order, ['second', 'third']);
    releaseThird();
    assert.equal(gate.busy, false);
    const free = await gate.acquire();
    assert.equal(gate.busy, true, 'a free gate is taken at once');
    free();
  });

  it('an aborted waiter leaves the queue and rejects with the abort reason', async () => {
    const gate = new JobGate();
    const held = gate.tryAcquire();
    assert.ok(held);
    const controller = new AbortController();
    const dropped = gate.acquire(controller.signal);
    const next = gate.acquire();
    controller.abort(new Error('cancelled by studio'));
    await assert.rejects(dropped, /cancelled by studio/);
    held();
    const release = await next;
    release();
    assert.equal(gate.busy, false, 'the aborted waiter never got the gate');
    await assert.rejects(gate.acquire(controller.signal), /cancelled by studio/, 'an already aborted signal is refused at once');
    assert.equal(gate.busy, false);
  });
});

describe('daemon lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-worker-lock-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds the pid, refuses a live owner, and is removed on release', async () => {
    const path = join(dir, 'a.lock');
    const lock = await DaemonLock.acquire(path, (pid) => `held by ${pid}`);
    assert.equal((await readFile(path, 'utf8')).trim(), String(process.pid));
    lock.release();
    await assert.rejects(readFile(path));
    // A live process that is not us: our parent.
    await writeFile(path, `${process.ppid}\n`);
    await assert.rejects(DaemonLock.acquire(path, (pid) => `held by ${pid}`), (error: unknown) => error instanceof LockHeldError && error.pid === process.ppid && error.message === `held by ${process.ppid}`);
  });

  it('takes over a lock whose process is dead', async () => {
    const path = join(dir, 'stale.lock');
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid ?? -1)));
    assert.equal(isProcessAlive(deadPid), false);
    await writeFile(path, `${deadPid}\n`);
    const lock = await DaemonLock.acquire(path, () => 'held');
    assert.equal((await readFile(path, 'utf8')).trim(), String(process.pid));
    lock.release();
  });

  it('takes over an empty (never written) lock file', async () => {
    const path = join(dir, 'empty.lock');
    await writeFile(path, '');
    const lock = await DaemonLock.acquire(path, () => 'held');
    assert.equal((await readFile(path, 'utf8')).trim(), String(process.pid));
    lock.release();
  });
});

describe('vram detection', () => {
  it('reads nvidia-smi name, MiB lines, skips [N/A] and sums them', () => {
    const gpus = parseNvidiaSmiGpus('NVIDIA GeForce RTX 4090, 24576\nNVIDIA RTX A2000, 8192\n');
    assert.deepEqual(gpus.map((gpu) => [gpu.vendor, gpu.name, gpu.vramGb]), [['nvidia', 'NVIDIA GeForce RTX 4090', 24], ['nvidia', 'NVIDIA RTX A2000', 8]]);
    assert.equal(totalVramGb(gpus), 32);
    assert.equal(totalVramGb(parseNvidiaSmiGpus('Tesla, [N/A]\nTesla T4, 15360\n')), 15);
    assert.equal(totalVramGb(parseNvidiaSmiGpus('')), 0);
  });
});

describe('registration credentials', () => {
  it('install id is 16 random bytes as 8-4-4-4-12 hex; the secret is 64 hex; the hash is lowercase sha256 hex', () => {
    const a = newInstallId();
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(a, newInstallId());
    const secret = newRegistrationSecret();
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.notEqual(secret, newRegistrationSecret());
    assert.equal(hashRegistrationSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
