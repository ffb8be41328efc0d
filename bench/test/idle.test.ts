import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseIdleArgs } from '../idle-worker.ts';

const REPO_ROOT = join(import.meta.dirname, '..', '..');

describe('npm run bench:idle', () => {
  it('defaults to a minute of idling of the bundle an installed worker runs', () => {
    const o = parseIdleArgs([]);
    assert.deepEqual([o.seconds, o.settleSeconds, o.from, o.json], [60, 10, 'bundle', false]);
    assert.throws(() => parseIdleArgs(['--from', 'binary']), /--from must be bundle or source/);
  });

  it('--json measures a real daemon connected to a real studio and prints rssMb and cpuPercent', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, 'bench', 'idle-worker.ts'), '--seconds', '1', '--settle-seconds', '0', '--from', 'source', '--json'], { cwd: REPO_ROOT });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
    });
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout.trim()) as Record<string, number | string>;
    assert.deepEqual(Object.keys(result).slice(0, 2), ['rssMb', 'cpuPercent']);
    assert.ok((result.rssMb as number) > 20 && (result.rssMb as number) < 1000);
    assert.ok((result.cpuPercent as number) >= 0);
    assert.equal(result.from, 'source');
    // Lazy loading holds: sharp's libvips (and onnxruntime) are mapped only once a job needs them.
    assert.deepEqual(result.unneededLibraries, [], 'an idle daemon maps no library it does not need');
    // Nor node's fetch: an ES module import of node:http would load undici and http2 (platform/node-http.ts).
    assert.deepEqual(result.unneededModules, [], 'an idle daemon loads neither undici nor http2');
    assert.ok((result.rssAnonMb as number) > 0 && (result.rssFileMb as number) > 0);
  });
});
