import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runBenchScript } from './run-script.ts';
import { BenchError } from '../errors.ts';
import { startStudioProcess } from '../studio-process.ts';

const runBench = (args: string[]) => runBenchScript('dispatch.ts', args);

describe('npm run bench', () => {
  it('--json drives the real studio and prints one JSON line, the four required keys first', async () => {
    const { code, stdout, stderr } = await runBench(['--workers', '3', '--jobs', '250', '--batch', '100', '--samples', '20', '--warmup', '5', '--preload', '300', '--json']);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, `stdout should be one line, got: ${stdout}`);
    const result = JSON.parse(lines[0] as string) as Record<string, number>;
    assert.deepEqual(Object.keys(result).slice(0, 4), ['workers', 'dispatchP50Ms', 'dispatchP99Ms', 'jobsPerSec']);
    assert.equal(result.workers, 3);
    assert.equal(result.samples, 20);
    assert.equal(result.jobs, 250);
    assert.ok((result.dispatchP50Ms as number) > 0 && (result.dispatchP50Ms as number) <= (result.dispatchP99Ms as number));
    assert.ok((result.dispatchP99Ms as number) <= (result.dispatchMaxMs as number));
    assert.ok((result.jobsPerSec as number) > 0);
    assert.equal(result.preloadedJobs, 300);
    assert.ok((result.dashboardMs as number) > 0 && (result.dashboardMs as number) <= (result.dashboardMaxMs as number));
  });

  it('the human report names the targets and whether each is met', async () => {
    const { code, stdout, stderr } = await runBench(['--workers', '2', '--jobs', '40', '--batch', '20', '--samples', '10', '--warmup', '0']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /dispatch p50 +\d+\.\d{3} ms +<= 1\.000 ms +(yes|NO)/);
    assert.match(stdout, /dispatch p99 +\d+\.\d{3} ms +<= 5\.000 ms +(yes|NO)/);
    assert.match(stdout, /completed jobs +[\d,]+ \/s +>= 5,000 \/s +(yes|NO)/);
  });

  it('a bad flag exits 2 with the usage', async () => {
    const { code, stderr } = await runBench(['--workers', 'many']);
    assert.equal(code, 2);
    assert.match(stderr, /--workers must be a whole number/);
    assert.match(stderr, /usage: npm run bench/);
  });
});

describe('startStudioProcess', () => {
  it('a studio that dies at start fails with studio_start_failed, its output, and no temp dir left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const entry = join(dir, 'broken-studio.js');
      writeFileSync(entry, "process.stderr.write('cannot open the database: disk on fire\\n'); process.exit(3);\n");
      await assert.rejects(startStudioProcess({ keepDataDir: false, entry, tmpParent: dir, startTimeoutMs: 10_000 }), (error: unknown) => {
        assert.ok(error instanceof BenchError);
        assert.equal(error.code, 'studio_start_failed');
        assert.match(error.message, /exited \(3\)/);
        assert.match(error.message, /disk on fire/);
        return true;
      });
      assert.deepEqual(readdirSync(dir), ['broken-studio.js'], 'the data directory was removed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
