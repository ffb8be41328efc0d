import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runBenchScript } from './run-script.ts';
import { parseHostsArgs } from '../hosts.ts';

const runHostsBench = (args: string[]) => runBenchScript('hosts.ts', args, { ...process.env, WRANGLER_SEND_METRICS: 'false' });

describe('npm run bench:hosts', () => {
  it('refuses workers that cannot be spread evenly over 1, 2 and 4 pools, and an unknown host', () => {
    assert.throws(() => parseHostsArgs(['--workers', '6']), /multiple of 4/);
    assert.throws(() => parseHostsArgs(['--hosts', 'node,lambda']), /--hosts takes node and\/or cloudflare/);
    const o = parseHostsArgs([]);
    assert.deepEqual([o.workers, o.rounds, o.hosts], [16, 2, ['node', 'cloudflare']]);
  });

  it('--json runs the same workload against the Node studio and the Cloudflare host, alternating, in one line', async () => {
    const { code, stdout, stderr } = await runHostsBench(['--workers', '4', '--jobs', '40', '--batch', '20', '--samples', '5', '--warmup', '1', '--sessions', '3', '--heartbeat-ms', '200', '--rounds', '2', '--json']);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, `stdout should be one line, got: ${stdout}`);
    const result = JSON.parse(lines[0] as string) as {
      bench: string;
      rounds: Array<{ host: string; round: number; dispatchP50Ms: number; dispatchP99Ms: number; jobsPerSec: number; jobs: number; samples: number; load1: number[]; sessions: { held: number; rssHeldMb: number; kbPerSession: number }; sharded?: Array<{ pools: number; jobsPerSec: number }> }>;
      best: Array<{ host: string; rounds: number; sharded?: Array<{ pools: number }> }>;
    };
    assert.equal(result.bench, 'hosts');
    // Alternating order: node first in round 1, cloudflare first in round 2.
    assert.deepEqual(result.rounds.map((r) => `${r.host}#${r.round}`), ['node#1', 'cloudflare#1', 'cloudflare#2', 'node#2']);
    for (const r of result.rounds) {
      assert.equal(r.samples, 5);
      assert.equal(r.jobs, 40);
      assert.ok(r.dispatchP50Ms > 0 && r.dispatchP50Ms <= r.dispatchP99Ms, `${r.host}: p50 ${r.dispatchP50Ms} p99 ${r.dispatchP99Ms}`);
      assert.ok(r.jobsPerSec > 0);
      assert.equal(r.sessions.held, 3);
      assert.ok(r.sessions.rssHeldMb > 10, `${r.host}: the measured process's RSS (${r.sessions.rssHeldMb} MiB) is a real process's`);
      assert.equal(r.load1.length, 2);
      if (r.host === 'cloudflare') assert.deepEqual(r.sharded?.map((s) => s.pools), [1, 2, 4]);
      else assert.equal(r.sharded, undefined);
      for (const s of r.sharded ?? []) assert.ok(s.jobsPerSec > 0);
    }
    assert.deepEqual(result.best.map((b) => [b.host, b.rounds, b.sharded?.length]), [['node', 2, undefined], ['cloudflare', 2, 3]]);
  });
});
