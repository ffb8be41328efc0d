import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const REPO_ROOT = join(import.meta.dirname, '..', '..');

function run(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bench', script), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function oneJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `stdout should be one line, got: ${stdout}`);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

// Shapes and sane bounds only: the timing and memory targets live in the bench, not in tests.
describe('npm run bench:busy', () => {
  it('--json runs a real worker daemon on a small backlog, prefetch on and off', async () => {
    const { code, stdout, stderr } = await run('busy-fraction.ts', ['--scenario', 'small', '--jobs', '20', '--warmup', '2', '--json']);
    assert.equal(code, 0, stderr);
    const result = oneJsonLine(stdout) as { busyFractionPrefetch: number; busyFractionNoPrefetch: number; runs: Array<Record<string, number | boolean | string>> };
    assert.deepEqual(Object.keys(result).slice(0, 2), ['busyFractionPrefetch', 'busyFractionNoPrefetch']);
    assert.equal(result.runs.length, 2);
    for (const r of result.runs) {
      assert.equal(r.jobs, 20);
      const fraction = r.busyFraction as number;
      assert.ok(fraction > 0 && fraction <= 1, `busy fraction ${fraction} in (0, 1]`);
      assert.ok((r.busyMs as number) > 0 && (r.busyMs as number) <= (r.spanMs as number) + 1e-9);
      assert.ok((r.engineMsMean as number) > 0);
      assert.ok((r.resultBytesMean as number) > 0);
      assert.ok((r.gapMsMean as number) >= 0);
    }
    const on = result.runs.find((r) => r.prefetch === true);
    assert.ok(on, 'a prefetch run');
    assert.equal(on.prefetchNegotiated, true);
    assert.ok((on.prefetchedJobs as number) > 0, 'with prefetch on, the worker took offers while a job ran');
    assert.equal(result.runs.find((r) => r.prefetch === false)?.prefetchedJobs, 0);
  });

  it('a bad flag exits 2 with the usage', async () => {
    const { code, stderr } = await run('busy-fraction.ts', ['--size', 'huge']);
    assert.equal(code, 2);
    assert.match(stderr, /--size must be WIDTHxHEIGHT/);
    assert.match(stderr, /usage: npm run bench:busy/);
  });
});

describe('npm run bench:sessions', () => {
  it('--json holds N real idle sessions and reports the studio memory per session', async () => {
    const { code, stdout, stderr } = await run('idle-sessions.ts', ['--sessions', '50', '--heartbeat-ms', '200', '--json']);
    assert.equal(code, 0, stderr);
    const result = oneJsonLine(stdout) as Record<string, number>;
    assert.deepEqual(Object.keys(result).slice(0, 3), ['sessions', 'kbPerSession', 'studioRssMb']);
    assert.equal(result.sessions, 50);
    assert.ok((result.kbPerSession as number) > 0, `KB/session ${result.kbPerSession} > 0`);
    assert.ok((result.studioRssMb as number) >= (result.studioRssBeforeSessionsMb as number));
    assert.ok((result.extrapolatedRssMbAtTarget as number) > (result.studioRssMb as number), 'below 10,000 sessions the 10,000 figure is extrapolated');
  });

  it('a bad flag exits 2 with the usage', async () => {
    const { code, stderr } = await run('idle-sessions.ts', ['--sessions', 'lots']);
    assert.equal(code, 2);
    assert.match(stderr, /--sessions must be a whole number/);
  });
});
