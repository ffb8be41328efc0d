import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBenchArgs } from '../dispatch.ts';
import { BenchError } from '../errors.ts';
import { JobTracker } from '../job-tracker.ts';
import { percentile, summarize } from '../stats.ts';

describe('stats', () => {
  it('percentile is nearest-rank: every figure is an observed sample', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    assert.equal(percentile(sorted, 50), 50);
    assert.equal(percentile(sorted, 99), 99);
    assert.equal(percentile(sorted, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('summarize sorts its input and reports p50/p90/p99/max/mean', () => {
    const s = summarize([5, 1, 3, 2, 4]);
    assert.deepEqual({ count: s.count, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, mean: s.mean }, { count: 5, p50: 3, p90: 5, p99: 5, max: 5, mean: 3 });
  });
});

describe('parseBenchArgs', () => {
  it('defaults to the issue figures', () => {
    const o = parseBenchArgs([]);
    assert.deepEqual(
      { workers: o.workers, jobs: o.jobs, samples: o.samples, warmup: o.warmup, batch: o.batch, client: o.client, json: o.json, keep: o.keep },
      { workers: 100, jobs: 20000, samples: 2000, warmup: 200, batch: 1000, client: 'raw', json: false, keep: false },
    );
  });

  it('reads every flag', () => {
    const o = parseBenchArgs(['--workers', '7', '--jobs', '50', '--samples', '9', '--warmup', '0', '--batch', '10', '--client', 'fetch', '--json', '--keep']);
    assert.deepEqual([o.workers, o.jobs, o.samples, o.warmup, o.batch, o.client, o.json, o.keep], [7, 50, 9, 0, 10, 'fetch', true, true]);
  });

  it('refuses bad values with a message that names the flag', () => {
    for (const args of [['--workers', '0'], ['--jobs', '1.5'], ['--batch', '1001'], ['--client', 'curl'], ['--nope']]) {
      assert.throws(
        () => parseBenchArgs(args),
        (error: unknown) => error instanceof BenchError && error.code === 'bad_flag' && error.message.includes(args[0]?.replace(/^--/, '') ?? ''),
        args.join(' '),
      );
    }
  });
});

describe('JobTracker', () => {
  it('counts an ack that arrives before the HTTP answer naming its job', async () => {
    const tracker = new JobTracker();
    tracker.completed('job-a', 1);
    assert.equal(tracker.unexpectedAcks, 1);
    tracker.expect(['job-a', 'job-b']);
    assert.equal(tracker.unexpectedAcks, 0);
    assert.equal(tracker.outstandingCount, 1);
    const drained = tracker.drained(5_000);
    tracker.completed('job-b', 2);
    await drained;
    assert.equal(tracker.completedCount, 2);
    assert.equal(tracker.lastCompletedAt, 2);
  });

  it('drained fails with the number of jobs that never completed', async () => {
    const tracker = new JobTracker();
    tracker.expect(['job-1', 'job-2', 'job-3']);
    tracker.completed('job-2', 1);
    await assert.rejects(tracker.drained(50), (error: unknown) => error instanceof BenchError && error.code === 'jobs_lost' && /^2 of the created jobs never completed/.test(error.message));
  });

  it('a lost worker socket ends every wait at once', async () => {
    const tracker = new JobTracker();
    tracker.expect(['job-1']);
    const waits = [tracker.drained(60_000), tracker.nextOffer(60_000), tracker.completion('job-1', 60_000)];
    tracker.lost('w-1', 1006, '');
    for (const wait of waits) await assert.rejects(wait, (error: unknown) => error instanceof BenchError && error.code === 'worker_disconnected');
    assert.throws(() => tracker.throwIfFailed(), /worker w-1/);
  });

  it('nextOffer resolves with the offer a worker saw', async () => {
    const tracker = new JobTracker();
    const next = tracker.nextOffer(5_000);
    tracker.offer('job-9', 42.5);
    assert.deepEqual(await next, { jobId: 'job-9', at: 42.5 });
  });
});

describe('preloadJobs', () => {
  it('writes the older half done (with attempt rows) and the newer half queued for an engine no bench worker serves', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { preloadJobs, PRELOAD_ENGINE } = await import('../preload.ts');
    const { NodeSql } = await import('../../packages/studio/src/node/sqlite.ts');
    const { JobStore } = await import('../../packages/studio/src/core/job-store.ts');
    const { jobId } = await import('../../packages/studio/src/core/jobs.ts');
    const dir = mkdtempSync(join(tmpdir(), 'preload-test-'));
    try {
      assert.deepEqual(preloadJobs(dir, 11), { done: 5, queued: 6 });
      const sql = new NodeSql(join(dir, 'studio.sqlite'));
      const store = new JobStore(sql);
      assert.deepEqual(store.countsByStatus(), { done: 5, queued: 6 });
      assert.equal(store.maxSeq(), 11);
      const newest = store.list({ limit: 20 });
      assert.deepEqual(newest.map((r) => r.status), [...Array(6).fill('queued'), ...Array(5).fill('done')]);
      assert.ok(newest.filter((r) => r.status === 'queued').every((r) => r.engine === PRELOAD_ENGINE));
      assert.equal(newest.at(-1)?.id, jobId(1, '000000'), 'ids in the studio format');
      assert.equal(store.attempts(jobId(1, '000000')).length, 1);
      for (const row of newest) JSON.parse(row.task);
      sql.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
