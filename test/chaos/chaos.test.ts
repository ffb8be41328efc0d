// Chaos: real processes, random kill -9 of workers, studio kill -9 + restart, connections cut by a
// TCP proxy. The oracle reads the studio's database afterwards. Bounded to a few minutes; `npm run
// chaos -- --jobs 10000` runs the same at scale. On both studio hosts (test/helpers/hosts.ts): the
// Cloudflare host at a reduced size (fewer jobs and workers: workerd, the Worker hop and the
// Durable Object share the two CI cores with everything else), with the same oracle over its
// Durable Object's SQLite file and R2 (test/helpers/stored-state.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forEachHost } from '../helpers/hosts.ts';
import { runChaos } from './run-chaos.ts';

const SIZE = { node: { jobs: 400, workers: 4 }, cloudflare: { jobs: 150, workers: 3 } } as const;

forEachHost((host) => {
  describe('chaos', () => {
    it('nothing lost, nothing doubled, every job terminal, results exact, under kills, restarts and cuts', { timeout: 240_000 }, async () => {
      const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31);
      const lines: string[] = [];
      const report = await runChaos({ ...SIZE[host], host, seed, timeoutMs: 180_000, chaosEveryMs: 400, studioRestarts: 1, log: (l) => lines.push(l) });
      const context = `seed ${seed} (replay with CHAOS_SEED=${seed})\n${report.problems.slice(0, 10).join('\n')}\n${lines.slice(-15).join('\n')}`;
      assert.equal(report.lost, 0, context);
      assert.equal(report.doubled, 0, context);
      assert.equal(report.terminal, report.jobs, context);
      assert.equal(report.wrongResults, 0, context);
      assert.equal(report.overCap, 0, context);
      assert.equal(report.overSlots, 0, context);
      assert.deepEqual(report.problems, [], context);
      // The chaos really happened.
      assert.ok(report.workerKills >= 1, `no worker was killed: ${context}`);
      assert.equal(report.studioRestarts, 1, context);
      // Kills and restarts are not the job's fault: nothing failed.
      assert.equal(report.done, report.jobs, context);
    });
  });
});
