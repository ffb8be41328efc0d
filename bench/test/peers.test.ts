import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, runBenchScript } from './run-script.ts';
import { cpuPlan, onCpus, usableCpus } from '../affinity.ts';
import { findOnPath } from '../child.ts';
import { BenchError } from '../errors.ts';
import { parsePeersArgs } from '../peers.ts';

const runPeers = (args: string[], env: NodeJS.ProcessEnv = process.env) => runBenchScript('peers.ts', args, env);

describe('npm run bench:peers', () => {
  it('defaults to the issue shape: 100 consumers, 20,000 jobs, 500 samples, 3 rounds, nothing pinned', () => {
    const o = parsePeersArgs([]);
    assert.deepEqual([o.workers, o.jobs, o.samples, o.rounds, o.json, o.pin], [100, 20000, 500, 3, false, 'none']);
  });

  it('--pin takes none, split or one, and says so for anything else', () => {
    assert.equal(parsePeersArgs(['--pin', 'split']).pin, 'split');
    assert.equal(parsePeersArgs(['--pin', 'one']).pin, 'one');
    assert.throws(() => parsePeersArgs(['--pin', 'sideways']), (error: unknown) => error instanceof BenchError && error.code === 'bad_flag' && /--pin must be none, split or one \(got "sideways"\)/.test(error.message));
  });

  // Needs redis-server on PATH (.ci/run installs it; elsewhere: apt-get install redis-server).
  it('--json runs our studio and BullMQ on both Redis setups and prints one line with the ratios first', async () => {
    const { code, stdout, stderr } = await runPeers(['--rounds', '1', '--workers', '3', '--jobs', '120', '--batch', '40', '--samples', '10', '--warmup', '2', '--json']);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, `stdout should be one line, got: ${stdout}`);
    const result = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.deepEqual(Object.keys(result).slice(0, 3), ['throughputRatio', 'p50Ratio', 'p99Ratio']);
    const runs = result.runs as Array<Record<string, Record<string, number> | number | string[]>>;
    assert.equal(runs.length, 1);
    const run = runs[0] as Record<string, Record<string, number>>;
    for (const side of ['ours', 'bullmqAof', 'bullmqNone']) {
      const figures = run[side] as Record<string, number>;
      assert.ok((figures.jobsPerSec as number) > 0, `${side} jobs/s`);
      assert.ok((figures.p50Ms as number) > 0 && (figures.p50Ms as number) <= (figures.p99Ms as number), `${side} p50 <= p99`);
    }
    const ours = run.ours as Record<string, number>;
    const aof = run.bullmqAof as Record<string, number>;
    // The ratios are ours over the AOF peer's, from the same round.
    assert.equal(result.throughputRatio, Math.round((ours.jobsPerSec as number) / (aof.jobsPerSec as number) * 100) / 100);
    assert.equal(result.p50Ratio, Math.round((ours.p50Ms as number) / (aof.p50Ms as number) * 100) / 100);
  });

  // Needs redis-server and taskset (util-linux), and two CPUs.
  it('--pin split runs this process on its first CPU and the studio and both redis-servers on the others, as the kernel lists them', { skip: usableCpus().length < 2 ? 'one CPU' : false }, async () => {
    const { code, stdout, stderr } = await runPeers(['--rounds', '1', '--workers', '3', '--jobs', '60', '--batch', '30', '--samples', '5', '--warmup', '1', '--pin', 'split', '--json']);
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout.trim()) as { pin: string; benchCpus: string; runs: Array<Record<string, { serverCpus?: string }>> };
    const plan = cpuPlan('split');
    assert.equal(result.pin, 'split');
    assert.equal(result.benchCpus, plan?.bench);
    for (const side of ['ours', 'bullmqAof', 'bullmqNone']) assert.equal(result.runs[0]?.[side]?.serverCpus, plan?.servers, side);
  });

  it('--pin split where this process may use one CPU is refused with what to use instead (exit 2)', { skip: findOnPath('taskset') ? false : 'taskset (util-linux) is not installed' }, async () => {
    const [command, args] = onCpus('0', process.execPath, [join(REPO_ROOT, 'bench', 'peers.ts'), '--rounds', '1', '--pin', 'split', '--json']);
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2, stderr);
    assert.equal(stdout, '');
    assert.match(stderr, /--pin split needs at least 2 CPUs; this process may use 1 \(CPU 0\)\. Use --pin one or --pin none\./);
  });

  it('--pin without taskset on PATH says how to install it and exits non-zero', async () => {
    const { code, stdout, stderr } = await runPeers(['--rounds', '1', '--pin', 'one', '--json'], { ...process.env, PATH: dirname(process.execPath) });
    assert.equal(code, 3);
    assert.equal(stdout, '');
    assert.match(stderr, /taskset is not on PATH/);
    assert.match(stderr, /apt-get install -y util-linux/);
  });

  it('without redis-server it says how to install it and exits non-zero', async () => {
    const { code, stdout, stderr } = await runPeers(['--rounds', '1', '--json'], { ...process.env, PATH: dirname(process.execPath) });
    assert.equal(code, 3);
    assert.equal(stdout, '');
    assert.match(stderr, /redis-server is not on PATH/);
    assert.match(stderr, /apt-get install -y redis-server/);
  });
});
