import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { allowedCpus, cpuPlan, formatCpuList, onCpus, parseCpuList, usableCpus } from '../affinity.ts';
import { findOnPath } from '../child.ts';
import { BenchError } from '../errors.ts';

describe('bench:peers --pin: the CPUs of each side', () => {
  it('split puts this process on the first CPU it may use and the servers on the rest; one puts all on the first; none pins nothing', () => {
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    assert.deepEqual(cpuPlan('split', [0, 1]), { mode: 'split', bench: '0', servers: '1' });
    assert.deepEqual(cpuPlan('split', range(0, 7)), { mode: 'split', bench: '0', servers: '1-7' });
    assert.deepEqual(cpuPlan('one', range(0, 7)), { mode: 'one', bench: '0', servers: '0' });
    assert.equal(cpuPlan('none', range(0, 7)), undefined);
    // A container's cpuset: CPUs 2, 3 and 6.
    assert.deepEqual(cpuPlan('split', [2, 3, 6]), { mode: 'split', bench: '2', servers: '3,6' });
    assert.deepEqual(cpuPlan('one', [2, 3, 6]), { mode: 'one', bench: '2', servers: '2' });
  });

  it('split with one usable CPU is refused with what to use instead', () => {
    assert.throws(
      () => cpuPlan('split', [3]),
      (error: unknown) => error instanceof BenchError && error.code === 'pin_impossible' && /needs at least 2 CPUs; this process may use 1 \(CPU 3\)/.test(error.message) && /--pin one or --pin none/.test(error.message),
    );
  });

  it('reads and writes the kernel\'s CPU list syntax', () => {
    assert.deepEqual(parseCpuList('0-2,5,7-8'), [0, 1, 2, 5, 7, 8]);
    assert.deepEqual(parseCpuList('4'), [4]);
    assert.equal(formatCpuList([0, 1, 2, 5, 7, 8]), '0-2,5,7-8');
    assert.equal(formatCpuList([3]), '3');
    // This process's own list, as /proc gives it, round-trips.
    const own = allowedCpus(process.pid) as string;
    assert.equal(formatCpuList(usableCpus()), own);
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
