/**
 * CPU per job of the studio's SQL on the create → offer → accept → complete path, without sockets
 * or HTTP: `node bench/job-path.ts [--jobs N] [--per-commit K] [--rounds R]`. The real JobStore and
 * WorkerStore over a real WAL file (group commit as the studio runs it: one transaction per K jobs'
 * worth of statements, the result's unit a savepoint). Prints µs per job for each step, the best
 * of R rounds (a shared machine only ever adds time). Robust to load in a way jobs/s is not; use it
 * to compare schema or statement changes (`--ddl` applies statements after the migrations), then
 * confirm with `npm run bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JobStore, type NewJob } from '../packages/studio/src/core/job-store.ts';
import { jobId } from '../packages/studio/src/core/jobs.ts';
import { migrate } from '../packages/studio/src/core/schema.ts';
import { WorkerStore } from '../packages/studio/src/core/worker-store.ts';
import { NodeSql } from '../packages/studio/src/node/sqlite.ts';

const { values } = parseArgs({
  options: { ddl: { type: 'string' }, jobs: { type: 'string', default: '20000' }, 'per-commit': { type: 'string', default: '50' }, rounds: { type: 'string', default: '3' } },
});
const JOBS = Number(values.jobs);
const PER_COMMIT = Number(values['per-commit']);
const ROUNDS = Number(values.rounds);

const TASK = JSON.stringify({ kind: 'llm', messages: [{ role: 'user', content: 'bench 1' }], maxTokens: 1, temperature: 0.7 });
const SOURCE = JSON.stringify({ engine: 'synthetic', files: [] });
const WORKERS = 100;

type Step = 'insert' | 'claim' | 'accept' | 'complete' | 'commit';

function round(seqStart: number, dir: string): Record<Step, number> {
  const sql = new NodeSql(join(dir, `r${seqStart}.sqlite`), { groupCommit: true, backgroundCheckpoints: true });
  migrate(sql);
  // `--ddl "DROP INDEX …; CREATE INDEX …"`: try a schema change before writing it as a migration.
  if (values.ddl) sql.exec(values.ddl);
  sql.commit();
  const jobs = new JobStore(sql);
  const workers = new WorkerStore(sql);
  const ids = Array.from({ length: WORKERS }, (_, i) => `w${i}`);
  for (const id of ids) sql.run(`INSERT INTO workers (id, label, machine_name, approved_at) VALUES (?, ?, 'box', 0)`, id, id);
  sql.commit();
  jobs.recount();
  const spent: Record<Step, number> = { insert: 0, claim: 0, accept: 0, complete: 0, commit: 0 };
  let t = 0;
  const time = (step: Step, fn: () => void) => {
    const t0 = performance.now();
    fn();
    spent[step] += performance.now() - t0;
  };
  for (let done = 0; done < JOBS; done += PER_COMMIT) {
    const batch: NewJob[] = [];
    for (let i = 0; i < PER_COMMIT; i++) {
      const seq = seqStart + done + i;
      batch.push({ id: jobId(seq, '00beef'), seq, model: 'synthetic-llm', kind: 'llm', engine: 'synthetic', task: TASK, modelSource: SOURCE, vramGbEstimate: 0, gameId: '', assetName: '', prompt: 'bench', priority: 0, maxAttempts: 3, now: ++t });
    }
    time('insert', () => {
      for (const job of batch) jobs.insert(job);
    });
    const claims: Array<{ id: string; worker: string }> = [];
    time('claim', () => {
      for (let i = 0; i < PER_COMMIT; i++) {
        const worker = ids[i % WORKERS] as string;
        const row = jobs.claimNextFor(worker, ['llm synthetic'], 12, [], t, t + 60_000, process.env.SPLIT === '1');
        if (row) claims.push({ id: row.id, worker });
      }
    });
    time('accept', () => {
      for (const c of claims) jobs.markRunning(c.id, c.worker, 1, t, t + 60_000);
    });
    time('complete', () => {
      for (const c of claims) {
        sql.transaction(() => {
          jobs.complete(c.id, c.worker, 1, { type: 'json', json: '{"ok":true}' }, t);
          workers.resetFailures(c.worker);
        });
      }
    });
    time('commit', () => sql.commit());
  }
  sql.close();
  return spent;
}

const dir = mkdtempSync(join(tmpdir(), 'job-path-'));
try {
  const best: Partial<Record<Step, number>> = {};
  for (let r = 0; r < ROUNDS; r++) {
    const spent = round(1 + r * 10_000_000, dir);
    for (const [step, ms] of Object.entries(spent) as Array<[Step, number]>) best[step] = Math.min(best[step] ?? Infinity, ms);
  }
  let total = 0;
  for (const [step, ms] of Object.entries(best)) {
    const us = (ms * 1000) / JOBS;
    total += us;
    process.stdout.write(`${step.padEnd(9)} ${us.toFixed(2).padStart(7)} µs/job\n`);
  }
  process.stdout.write(`${'total'.padEnd(9)} ${total.toFixed(2).padStart(7)} µs/job (best of ${ROUNDS} rounds, ${JOBS} jobs, ${PER_COMMIT} per commit)\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
