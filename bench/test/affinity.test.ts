import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { allowedCpus, cpuPlan, findOnPath, onCpus } from '../affinity.ts';
import { BenchError } from '../errors.ts';

describe('bench:peers --pin: the CPUs of each side', () => {
  it('split puts this process on CPU 0 and the servers on every other CPU; one puts all on CPU 0; none pins nothing', () => {
    assert.deepEqual(cpuPlan('split', 2), { mode: 'split', bench: '0', servers: '1' });
    assert.deepEqual(cpuPlan('split', 8), { mode: 'split', bench: '0', servers: '1-7' });
    assert.deepEqual(cpuPlan('one', 8), { mode: 'one', bench: '0', servers: '0' });
    assert.equal(cpuPlan('none', 8), undefined);
  });

  it('split on a one-CPU machine is refused with what to use instead', () => {
    assert.throws(
      () => cpuPlan('split', 1),
      (error: unknown) => error instanceof BenchError && error.code === 'pin_impossible' && /needs at least 2 CPUs; this machine has 1/.test(error.message) && /--pin one or --pin none/.test(error.message),
    );
  });

  it('onCpus starts a command whose every thread may run only on the CPUs given (read back from /proc)', { skip: findOnPath('taskset') ? false : 'taskset (util-linux) is not installed' }, async () => {
    const [command, args] = onCpus('0', 'sleep', ['30']);
    const child = spawn(command, args, { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      // taskset sets the affinity, then execs sleep in the same process: wait for the exec.
      let allowed: string | undefined;
      for (let i = 0; i < 200 && allowed !== '0'; i++) {
        allowed = allowedCpus(child.pid as number);
        if (allowed !== '0') await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(allowed, '0');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('without CPUs onCpus leaves the command as it is (nothing pinned, no taskset needed)', () => {
    assert.deepEqual(onCpus(undefined, '/usr/bin/redis-server', ['--port', '1']), ['/usr/bin/redis-server', ['--port', '1']]);
  });
});
